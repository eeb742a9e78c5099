//! Finding 9: a header-read timeout, an idle timeout on request bodies and
//! a connection cap (`server.max_connections`).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::edges::admin_key;
use crate::common::Env;

fn address(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection, or `limit` passes (then
/// `None`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n_read) => received.extend_from_slice(&buffer[..n_read]),
            }
        }
    })
    .await
    .ok()
    .map(|()| received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_silent_connections_are_closed_after_the_header_timeout() {
    let env = Env::sqlite();
    let (_server, url) = env.serve_with(0, &[("REEL_SERVER_HEADER_READ_TIMEOUT", "1s")]);
    let mut half_sent = TcpStream::connect(address(&url)).await.expect("connect");
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: reel\r\n")
        .await
        .expect("write");
    let mut silent = TcpStream::connect(address(&url)).await.expect("connect");
    let started = Instant::now();
    let closed = read_until_closed(&mut half_sent, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the half-sent request stayed open");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let closed = read_until_closed(&mut silent, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the silent connection stayed open");
    // A whole request is still served.
    let response = reqwest::get(format!("{url}/healthz")).await.expect("get");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_and_are_served_once_others_close() {
    let env = Env::sqlite();
    let (_server, url) = env.serve_with(0, &[("REEL_SERVER_MAX_CONNECTIONS", "4")]);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(address(&url)).await.expect("connect"));
    }
    // The kernel completes the handshake, but the server does not take the
    // fifth connection while four are open.
    let mut waiting = TcpStream::connect(address(&url)).await.expect("connect");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: reel\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), waiting.read(&mut buffer)).await;
    assert!(early.is_err(), "served over the cap: {early:?}");
    drop(idle);
    let response = read_until_closed(&mut waiting, Duration::from_secs(20))
        .await
        .expect("served once the idle connections closed");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for _ in 0..8 {
        let response = reqwest::get(format!("{url}/healthz")).await.expect("get");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_cut_and_nothing_is_stored() {
    let env = Env::sqlite();
    let (server, url) = env.serve_with(0, &[("REEL_SERVER_BODY_IDLE_TIMEOUT", "1s")]);
    let admin = admin_key(&server);
    let mut stream = TcpStream::connect(address(&url)).await.expect("connect");
    let head = format!(
        "POST /v1/videos?title=stalled HTTP/1.1\r\nHost: reel\r\nAuthorization: Bearer {admin}\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(&[0u8; 1000]).await.expect("write");
    let started = Instant::now();
    let response = read_until_closed(&mut stream, Duration::from_secs(20))
        .await
        .expect("the stalled body was never cut");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(text.contains("body_idle_timeout"), "{text}");
    let videos: Value = reqwest::Client::new()
        .get(format!("{url}/v1/videos"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(
        videos["videos"].as_array().map(Vec::len),
        Some(0),
        "{videos}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reel_edge_closes_half_sent_requests_and_caps_its_connections() {
    let env = Env::sqlite();
    let (_server, url) = env.serve_with(0, &[]);
    let edge = env.spawn(&[
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &url,
        "--header-read-timeout",
        "1s",
        "--max-connections",
        "2",
    ]);
    let edge_url = edge.listening_url();
    let mut half_sent = TcpStream::connect(address(&edge_url))
        .await
        .expect("connect");
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: reel\r\n")
        .await
        .expect("write");
    let mut idle = TcpStream::connect(address(&edge_url))
        .await
        .expect("connect");
    // Both permits are taken: a third connection waits in the listen queue.
    let mut waiting = TcpStream::connect(address(&edge_url))
        .await
        .expect("connect");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: reel\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    // Served only once the header timeout frees a permit: not at once.
    let started = Instant::now();
    let response = read_until_closed(&mut waiting, Duration::from_secs(20))
        .await
        .expect("served once the others closed");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "served over the cap after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let closed = read_until_closed(&mut half_sent, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the half-sent request stayed open");
    let closed = read_until_closed(&mut idle, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the silent connection stayed open");
}
