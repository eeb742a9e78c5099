//! Finding 14: the session cookie is `Secure` when `server.public_url` is
//! https, and the Origin check compares scheme, host and port.

use serde_json::{json, Value};

use super::edges::admin_key;
use crate::common::Env;

/// Signs in with `key` and returns the `Set-Cookie` header.
async fn sign_in(url: &str, key: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/session"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 200);
    response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string()
}

async fn job_count(url: &str, key: &str) -> usize {
    let jobs: Value = reqwest::Client::new()
        .get(format!("{url}/v1/jobs"))
        .bearer_auth(key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    jobs["jobs"].as_array().map_or(0, Vec::len)
}

/// A selftest job created by the session cookie with these headers.
async fn post_with_cookie(url: &str, cookie: &str, host: Option<&str>, origin: &str) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/jobs/selftest"))
        .header("cookie", cookie.split(';').next().expect("pair"))
        .header("origin", origin)
        .json(&json!({"tasks": 1}));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    request.send().await.expect("post").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_url_the_origin_must_be_http_and_the_host() {
    let env = Env::sqlite();
    let (server, url) = env.serve(0);
    let admin = admin_key(&server);
    let cookie = sign_in(&url, &admin).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
    let authority = url.trim_start_matches("http://");
    let port: u16 = authority
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    for origin in [
        format!("https://{authority}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://evil.example".to_string(),
        "null".to_string(),
    ] {
        assert_eq!(
            post_with_cookie(&url, &cookie, None, &origin).await,
            401,
            "{origin}"
        );
    }
    assert_eq!(job_count(&url, &admin).await, 0);
    assert_eq!(post_with_cookie(&url, &cookie, None, &url).await, 201);
    assert_eq!(job_count(&url, &admin).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_the_cookie_is_secure_and_the_origin_must_be_https() {
    let env = Env::sqlite();
    let (server, url) = env.serve_with(
        0,
        &[("REEL_SERVER_PUBLIC_URL", "https://video.example.org")],
    );
    let admin = admin_key(&server);
    let cookie = sign_in(&url, &admin).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let host = Some("video.example.org");
    for origin in [
        "http://video.example.org",
        "https://video.example.org:8443",
        "https://evil.example",
    ] {
        assert_eq!(
            post_with_cookie(&url, &cookie, host, origin).await,
            401,
            "{origin}"
        );
    }
    assert_eq!(job_count(&url, &admin).await, 0);
    assert_eq!(
        post_with_cookie(&url, &cookie, host, "https://video.example.org").await,
        201
    );
    assert_eq!(job_count(&url, &admin).await, 1);
}
