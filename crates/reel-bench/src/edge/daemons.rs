//! The processes under test: nginx (origin, edge) and `reel edge`, their
//! configurations and start-up.

use super::*;

pub(super) fn command_output(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output()?;
    anyhow::ensure!(output.status.success(), "{:?} failed", command);
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Writes the origin's objects `s0.bin` .. `s999.bin` of random bytes.
pub(super) fn write_objects(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut random = SplitMix64::new(0x0b1e_c75e);
    let mut block = vec![0u8; OBJECT_BYTES];
    for object_idx in 0..N_OBJECTS {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&random.next_u64().to_le_bytes());
        }
        let path = dir.join(format!("s{object_idx}.bin"));
        fs::write(&path, &block).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Directives every nginx config here shares: one worker, logs and temp
/// files in the bench directory, and root workers (the files are the
/// bench's own).
pub(super) fn nginx_common(dir: &Path, name: &str) -> String {
    let dir = dir.display();
    format!(
        "worker_processes 1;\n\
         user root root;\n\
         pid {dir}/{name}.pid;\n\
         error_log {dir}/{name}-error.log warn;\n\
         events {{ worker_connections 4096; }}\n"
    )
}

pub(super) fn origin_config(
    dir: &Path,
    root: &Path,
    access_log: &Path,
    port: u16,
    slow_port: u16,
) -> String {
    let common = nginx_common(dir, "origin");
    let temp = dir.display();
    let root = root.display();
    let access_log = access_log.display();
    format!(
        "{common}\
         http {{\n\
           access_log {access_log};\n\
           client_body_temp_path {temp}/origin-body; proxy_temp_path {temp}/origin-proxy;\n\
           default_type application/octet-stream;\n\
           sendfile on; tcp_nopush on; keepalive_requests 100000; etag on;\n\
           server {{ listen 127.0.0.1:{port}; root {root};\n\
             location /seg/ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n\
             location ~ ^/v/[^/]+/(s[0-9]+\\.bin)$ {{ alias {root}/seg/$1; add_header reel-access private; \
               add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n\
             location /slow/ {{ proxy_pass http://127.0.0.1:{slow_port}; proxy_buffering off; }} }}\n\
           server {{ listen 127.0.0.1:{slow_port} sndbuf=32k; access_log off; sendfile off;\
             location /slow/ {{ alias {root}/seg/; limit_rate {HERD_ORIGIN_RATE}; \
               add_header Cache-Control \"public, max-age=31536000, immutable\"; }} }}\n\
         }}\n"
    )
}

/// nginx `proxy_cache` as the edge: cache on tmpfs, larger than the working
/// set, coalescing on, no access log (reel logs nothing per request either).
pub(super) fn nginx_edge_config(
    dir: &Path,
    cache_dir: &Path,
    origin_port: u16,
    port: u16,
) -> String {
    let common = nginx_common(dir, "nginx-edge");
    let temp = dir.display();
    let cache_dir = cache_dir.display();
    format!(
        "{common}\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {temp}/edge-body; proxy_temp_path {temp}/edge-proxy;\n\
           sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
           proxy_cache_path {cache_dir}/nginx levels=1:2 keys_zone=edge:16m max_size=4g inactive=7d use_temp_path=off;\n\
           upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}\n\
           server {{ listen 127.0.0.1:{port};\n\
             location / {{\n\
               proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
               proxy_cache edge; proxy_cache_key $uri$is_args$args;\n\
               proxy_cache_lock on; proxy_cache_lock_timeout 5s; proxy_cache_revalidate on;\n\
               add_header X-Cache $upstream_cache_status;\n\
             }} }}\n\
         }}\n"
    )
}

pub(super) fn start_nginx(
    conf: &Path,
    dir: &Path,
    name: &str,
    cpu: usize,
    port: u16,
) -> anyhow::Result<Daemon> {
    let error_log = dir.join(format!("{name}-error.log"));
    let child = Command::new("taskset")
        .args(["-c", &cpu.to_string(), "nginx", "-e"])
        .arg(&error_log)
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting nginx ({name})"))?;
    let mut daemon = Daemon { child };
    wait_listening(&mut daemon, port, &error_log)
        .with_context(|| format!("nginx ({name}) did not start"))?;
    Ok(daemon)
}

/// `reel edge` on [`CACHE_CPU`]; with `jwks`, verifying viewers' tokens
/// with those keys (the signed-playback runs).
pub(super) fn start_reel_edge(
    reel: &Path,
    dir: &Path,
    origin_port: u16,
    port: u16,
    jwks: Option<&Path>,
) -> anyhow::Result<Daemon> {
    let stderr_path = dir.join(format!("reel-edge-{port}.log"));
    let mut command = Command::new("taskset");
    command
        .args(["-c", &CACHE_CPU.to_string()])
        .arg(reel)
        .args([
            "edge",
            "--upstream",
            &format!("http://127.0.0.1:{origin_port}"),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--name",
            "bench",
            // Twice the working set: each tier counts its bytes with
            // headers and fills in flight.
            "--cache-memory",
            "2GiB",
            "--eviction",
            "s3-fifo",
        ]);
    if let Some(jwks) = jwks {
        command.arg("--jwks").arg(jwks);
    }
    let child = command
        .env("REEL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path)?)
        .spawn()
        .with_context(|| format!("starting {} edge", reel.display()))?;
    let mut daemon = Daemon { child };
    wait_listening(&mut daemon, port, &stderr_path).context("reel edge did not start")?;
    Ok(daemon)
}

/// Waits until `port` accepts connections; on failure the error carries
/// the end of `log`.
pub(super) fn wait_listening(daemon: &mut Daemon, port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        let exited = daemon.child.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let text = fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::bail!(
                "not listening on port {port} ({}); {}:\n{}",
                match exited {
                    Some(status) => format!("exited with {status}"),
                    None => "timed out after 10 s".to_string(),
                },
                log.display(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
