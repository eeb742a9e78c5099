//! TLS and HTTP/2 on the real binary (issue 16 point 4): `reel serve` and
//! two `reel edge` tiers over HTTPS with certificates of a CA made per run
//! by `openssl`; HTTP/2 chosen by ALPN (reqwest and `curl --http2`),
//! HTTP/1.1 still served, the edge's certificate replaced on SIGHUP while it
//! keeps running, and unusable TLS files (missing, not PEM, a key of
//! another certificate) refused at startup by name; and hls.js in Debian's
//! chromium playing from an edge over HTTPS with HTTP/2, the browser
//! trusting the edge's certificate by its SPKI hash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::Version;
use sha2::{Digest, Sha256};

use crate::common::{
    fatal_errors, generated_video, play_in_chromium, upstream_requests, Env, Process,
};

/// A CA made for one test run, and the leaf certificates it signs.
struct Pki {
    dir: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    n_leaves: u32,
}

/// openssl's settings: the CA's and the leaves' extensions. rustls (webpki)
/// wants a leaf with a subjectAltName and without CA:TRUE.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = reel test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
";

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl not found on PATH; install it (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let config = dir.join("openssl.cnf");
        std::fs::write(&config, OPENSSL_CONFIG).expect("openssl.cnf");
        let ca_cert = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-config",
            path_str(&config),
            "-extensions",
            "ca",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=reel test ca",
            "-keyout",
            path_str(&ca_key),
            "-out",
            path_str(&ca_cert),
        ]);
        Pki {
            dir,
            ca_cert,
            ca_key,
            n_leaves: 0,
        }
    }

    /// A new key and certificate for 127.0.0.1 signed by the CA, written
    /// to `cert` and `key` (replacing what is there, each by a rename).
    fn issue(&mut self, cert: &Path, key: &Path) {
        self.n_leaves += 1;
        let n = self.n_leaves;
        let config = self.dir.join("openssl.cnf");
        let request = self.dir.join(format!("leaf-{n}.csr"));
        let new_key = self.dir.join(format!("leaf-{n}.key"));
        let new_cert = self.dir.join(format!("leaf-{n}.pem"));
        openssl(&[
            "req",
            "-new",
            "-config",
            path_str(&config),
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            path_str(&new_key),
            "-out",
            path_str(&request),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&request),
            "-CA",
            path_str(&self.ca_cert),
            "-CAkey",
            path_str(&self.ca_key),
            "-set_serial",
            &(1000 + n).to_string(),
            "-days",
            "2",
            "-extfile",
            path_str(&config),
            "-extensions",
            "leaf",
            "-out",
            path_str(&new_cert),
        ]);
        std::fs::rename(&new_key, key).expect("install key");
        std::fs::rename(&new_cert, cert).expect("install cert");
    }
}

/// The SHA-256 of the DER certificate in a PEM file.
fn fingerprint_of_file(cert: &Path) -> String {
    let der = openssl(&["x509", "-in", path_str(cert), "-outform", "DER"]);
    hex::encode(Sha256::digest(der))
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo of the certificate in a
/// PEM file: what chromium's `--ignore-certificate-errors-spki-list` takes.
fn spki_sha256_base64(cert: &Path) -> String {
    let output = Command::new("bash")
        .args([
            "-c",
            "set -euo pipefail; openssl x509 -in \"$1\" -pubkey -noout \
             | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A",
            "spki",
        ])
        .arg(cert)
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "the SPKI hash of {}: {}",
        cert.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // 32 bytes in base64: 43 characters and one `=`.
    assert_eq!(hash.len(), 44, "{hash}");
    hash
}

/// A client trusting only the per-run CA; one connection per client.
fn client(pki: &Pki, http1_only: bool) -> reqwest::Client {
    let ca = std::fs::read(&pki.ca_cert).expect("ca.pem");
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca certificate"))
        .tls_info(true)
        .timeout(Duration::from_secs(30));
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().expect("client")
}

/// GET `url`: (HTTP version, the served certificate's SHA-256, body).
async fn fetch(client: &reqwest::Client, url: &str) -> (Version, String, bytes::Bytes) {
    let response = client.get(url).send().await.expect("https request");
    assert_eq!(response.status(), 200, "{url}");
    let version = response.version();
    let peer = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(|der| hex::encode(Sha256::digest(der)))
        .expect("tls info with the peer certificate");
    (version, peer, response.bytes().await.expect("body"))
}

/// The first URI line of a playlist.
fn first_uri(playlist: &str) -> String {
    playlist
        .lines()
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or_else(|| panic!("no URI in {playlist}"))
        .to_string()
}

fn start_edge(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> (Process, String) {
    let mut all = vec!["edge", "--listen", "127.0.0.1:0", "--cache-memory", "64MiB"];
    all.extend_from_slice(args);
    let process = env.spawn_with(&all, envs);
    let url = process.listening_url();
    (process, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_http2_by_alpn_through_edge_shield_and_origin_and_sighup_reloads_the_certificate(
) {
    let env = Env::sqlite();
    let mut pki = Pki::new(env.dir.path());
    let tier_files = |name: &str| {
        (
            env.dir.path().join(format!("{name}.pem")),
            env.dir.path().join(format!("{name}.key")),
        )
    };
    let (origin_cert, origin_key) = tier_files("origin");
    let (shield_cert, shield_key) = tier_files("shield");
    let (edge_cert, edge_key) = tier_files("edge");
    for (cert, key) in [
        (&origin_cert, &origin_key),
        (&shield_cert, &shield_key),
        (&edge_cert, &edge_key),
    ] {
        pki.issue(cert, key);
    }

    let origin = env.spawn(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--tls-cert",
        path_str(&origin_cert),
        "--tls-key",
        path_str(&origin_key),
    ]);
    let origin_url = origin.listening_url();
    assert!(origin_url.starts_with("https://"), "{origin_url}");
    let key = env.create_key();
    // `reel ingest` trusts the system's roots; SSL_CERT_FILE points them at
    // the per-run CA.
    let source = reel_testkit::media::Lavfi::video("320x180", "25", 8)
        .with_audio(48000)
        .write(env.dir.path().join("tls.mp4"));
    let ingested = env
        .command(&["ingest", "--wait", "--json", "--server", &origin_url])
        .arg(&source)
        .env("REEL_API_KEY", &key)
        .env("SSL_CERT_FILE", &pki.ca_cert)
        .output()
        .expect("run reel ingest");
    let video: serde_json::Value =
        serde_json::from_slice(&ingested.stdout).unwrap_or_else(|error| {
            panic!(
                "reel ingest printed no JSON ({error}): {}",
                String::from_utf8_lossy(&ingested.stderr)
            )
        });
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");

    // Served over TLS without server.public_url: the session cookie is
    // Secure, and a signed-in page's origin is https and the Host.
    let signed_in = client(&pki, false)
        .post(format!("{origin_url}/v1/session"))
        .json(&serde_json::json!({ "api_key": key }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("cookie text")
        .to_string();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let session = cookie.split(';').next().expect("name=value");
    for (page_origin, expected) in [
        (origin_url.clone(), 200),
        (origin_url.replacen("https", "http", 1), 401),
    ] {
        let answer = client(&pki, false)
            .post(format!("{origin_url}/v1/videos/{id}/playback"))
            .header(reqwest::header::COOKIE, session)
            .header(reqwest::header::ORIGIN, page_origin.as_str())
            .send()
            .await
            .expect("cookie request");
        assert_eq!(answer.status(), expected, "{page_origin}");
    }

    // The shield trusts the origin through --upstream-ca; the edge trusts
    // the shield through the system's roots (SSL_CERT_FILE).
    let (_shield, shield_url) = start_edge(
        &env,
        &[
            "--name",
            "shield",
            "--upstream",
            &origin_url,
            "--upstream-ca",
            path_str(&pki.ca_cert),
            "--tls-cert",
            path_str(&shield_cert),
            "--tls-key",
            path_str(&shield_key),
        ],
        &[],
    );
    let (edge, edge_url) = start_edge(
        &env,
        &[
            "--name",
            "edge",
            "--upstream",
            &shield_url,
            "--tls-cert",
            path_str(&edge_cert),
            "--tls-key",
            path_str(&edge_key),
        ],
        &[("SSL_CERT_FILE", path_str(&pki.ca_cert))],
    );
    assert!(edge_url.starts_with("https://"), "{edge_url}");

    // HTTP/2 by ALPN: the master playlist, a media playlist and a segment
    // through edge → shield → origin, all HTTPS.
    let http2 = client(&pki, false);
    let first_fingerprint = fingerprint_of_file(&edge_cert);
    let master_url = format!("{edge_url}/v/{id}/master.m3u8");
    let (version, served, master) = fetch(&http2, &master_url).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(served, first_fingerprint);
    let master = String::from_utf8_lossy(&master).to_string();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    let media_url = format!("{edge_url}/v/{id}/{}", first_uri(&master));
    let (version, _, media) = fetch(&http2, &media_url).await;
    assert_eq!(version, Version::HTTP_2);
    let media = String::from_utf8_lossy(&media).to_string();
    let segment_name = first_uri(&media);
    let segment_url = match media_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{segment_name}"),
        None => panic!("no directory in {media_url}"),
    };
    let (version, _, segment) = fetch(&http2, &segment_url).await;
    assert_eq!(version, Version::HTTP_2);
    let (_, _, from_origin) = fetch(&http2, &segment_url.replace(&edge_url, &origin_url)).await;
    assert!(!segment.is_empty());
    assert_eq!(segment, from_origin, "the edge serves the origin's bytes");
    assert!(
        upstream_requests(&http2, &shield_url).await >= 3,
        "the shield fetched the playlists and the segment from the origin"
    );

    // HTTP/1.1 still works, on the same port.
    let http1 = client(&pki, true);
    let (version, _, again) = fetch(&http1, &segment_url).await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(again, segment);

    // curl negotiates h2 by ALPN too.
    let curl = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--http2", "--cacert"])
        .arg(&pki.ca_cert)
        .args(["--output", "/dev/null", "--write-out", "%{http_version}"])
        .arg(&segment_url)
        .output()
        .expect("curl not found on PATH; install it (apt-get install curl)");
    assert!(
        curl.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "2");

    // New files and SIGHUP: new connections get the new certificate, the
    // process keeps serving.
    pki.issue(&edge_cert, &edge_key);
    let second_fingerprint = fingerprint_of_file(&edge_cert);
    assert_ne!(first_fingerprint, second_fingerprint);
    edge.signal(libc::SIGHUP);
    edge.wait_for_line("tls certificate reloaded", Duration::from_secs(10));
    let (version, served, body) = fetch(&client(&pki, false), &segment_url).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(
        served, second_fingerprint,
        "a new connection sees the new certificate"
    );
    assert_eq!(body, segment);

    // An unusable key on SIGHUP keeps the current certificate.
    std::fs::write(&edge_key, "not a key").expect("break the key");
    edge.signal(libc::SIGHUP);
    edge.wait_for_line("tls reload failed", Duration::from_secs(10));
    let (_, served, _) = fetch(&client(&pki, true), &master_url).await;
    assert_eq!(served, second_fingerprint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_are_clear_startup_errors_naming_the_file() {
    let env = Env::sqlite();
    let mut pki = Pki::new(env.dir.path());
    let cert = env.dir.path().join("leaf.pem");
    let key = env.dir.path().join("leaf.key");
    pki.issue(&cert, &key);
    let missing_key = env.dir.path().join("missing.key");
    let not_pem = env.dir.path().join("not-pem.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    // A key of another certificate.
    let other_key = env.dir.path().join("other.key");
    pki.issue(&env.dir.path().join("other.pem"), &other_key);
    let edge = vec![
        "edge",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
    ];
    let serve = vec!["serve", "--listen", "127.0.0.1:0", "--workers", "0"];
    let cases: [(Vec<&str>, &Path, &str); 5] = [
        (edge.clone(), &missing_key, "reading the tls key"),
        (serve.clone(), &missing_key, "reading the tls key"),
        (edge.clone(), &not_pem, "the tls key"),
        (serve, &not_pem, "not usable PEM"),
        (edge, &other_key, "cannot be used together"),
    ];
    for (args, bad_key, expected) in cases {
        let output = env
            .command(&args)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(bad_key)
            .output()
            .expect("run reel");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected) && stderr.contains(path_str(bad_key)),
            "{args:?}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "{args:?} must not start listening"
        );
    }
    // An edge's --upstream-ca that holds no certificate is refused too.
    let output = env
        .command(&[
            "edge",
            "--upstream",
            "https://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--upstream-ca",
            path_str(&not_pem),
        ])
        .output()
        .expect("run reel edge");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("upstream ca bundle") && stderr.contains(path_str(&not_pem)),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_in_chromium_plays_from_an_edge_over_https_with_http2_trusting_its_spki() {
    let env = Env::sqlite();
    let mut pki = Pki::new(env.dir.path());
    let edge_cert = env.dir.path().join("edge.pem");
    let edge_key = env.dir.path().join("edge.key");
    pki.issue(&edge_cert, &edge_key);
    let spki = spki_sha256_base64(&edge_cert);

    // A plain origin: what is tested is the viewer's side, browser → edge.
    let (_origin, origin_url) = env.serve_with(2, &[("REEL_ENCODE_PRESET", "ultrafast")]);
    let key = env.create_key();
    let video = env.ingest(&origin_url, &key, &generated_video(env.dir.path()));
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let (_edge, edge_url) = start_edge(
        &env,
        &[
            "--upstream",
            &origin_url,
            "--tls-cert",
            path_str(&edge_cert),
            "--tls-key",
            path_str(&edge_key),
        ],
        &[],
    );
    let edge_host = edge_url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("the edge serves https: {edge_url}"))
        .to_string();
    let master_url = format!("{edge_url}/v/{id}/master.m3u8");

    // The page is plain http on another port (page-player.mjs); an http
    // page may fetch from https. Without the SPKI flag chromium refuses the
    // per-run CA's certificate, so the flag is what makes it trusted.
    let (success, report) = play_in_chromium(
        "play-hls.mjs",
        master_url.clone(),
        vec![
            format!("--chromium-arg=--ignore-certificate-errors-spki-list={spki}"),
            "--record-protocols".to_string(),
        ],
    )
    .await;
    assert!(success, "{report:#}");
    assert!(fatal_errors(&report).is_empty(), "{report:#}");
    assert_eq!(report["ended"], true, "{report:#}");
    let duration = report["duration"].as_f64().expect("duration");
    assert!((duration - 3.0).abs() < 0.2, "{report:#}");
    assert!(
        report["decodedFrames"].as_u64().unwrap_or(0) >= 70,
        "{report:#}"
    );
    let fragment_hosts: Vec<&String> = report["fragHosts"]
        .as_object()
        .expect("fragHosts")
        .keys()
        .collect();
    assert_eq!(fragment_hosts, [&edge_host], "{report:#}");
    let n_fragments: u64 = report["fragHosts"][&edge_host]
        .as_u64()
        .expect("fragments from the edge");
    // Every response the page got for media (playlists, init and media
    // segments) came from the edge, and each one over HTTP/2, as chromium
    // itself reports it (an HTTP/1.1 connection says "http/1.1").
    let protocols = report["responseProtocols"]
        .as_object()
        .expect("responseProtocols");
    let hosts: Vec<&String> = protocols.keys().collect();
    assert_eq!(hosts, [&edge_host], "{report:#}");
    let by_protocol = protocols[&edge_host].as_object().expect("protocols");
    let protocol_names: Vec<&String> = by_protocol.keys().collect();
    assert_eq!(protocol_names, ["h2"], "{report:#}");
    let n_requests = by_protocol["h2"].as_u64().expect("count");
    assert!(
        n_requests > n_fragments,
        "the playlists and the segments: {report:#}"
    );
    let edge_client = client(&pki, false);
    assert!(
        upstream_requests(&edge_client, &edge_url).await >= 3,
        "the edge fetched from the origin"
    );

    // The same play without the flag: the certificate is not trusted.
    let (success, refused) = play_in_chromium("play-hls.mjs", master_url, Vec::new()).await;
    assert!(!success, "{refused:#}");
    assert_eq!(refused["ended"], false, "{refused:#}");
    assert_eq!(refused["decodedFrames"], 0, "{refused:#}");
    assert!(
        fatal_errors(&refused)
            .iter()
            .any(|error| error["details"] == "manifestLoadError"),
        "{refused:#}"
    );
    assert!(
        refused["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|error| error["details"]
                .as_str()
                .is_some_and(|details| details.contains("ERR_CERT_AUTHORITY_INVALID"))),
        "chromium names the untrusted certificate: {refused:#}"
    );
}
