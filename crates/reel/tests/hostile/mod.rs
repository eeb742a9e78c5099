//! The hostile-tenant suite (issue 13): each finding as a test against the
//! real binary: what an ordinary (uploader) key tries, the status code, and
//! that nothing was changed.

mod admin;
mod edges;
mod media;
mod ownership;
mod purge;
mod quota;
mod redaction;
mod selftest;
mod server;
mod session;

use std::time::Duration;

use serde_json::Value;

use crate::common::{Env, Process};

/// A server with its admin key and two uploaders, `alice` and `mallory`.
pub struct Tenants {
    pub env: Env,
    pub url: String,
    pub admin: String,
    pub alice: String,
    pub mallory: String,
    pub http: reqwest::Client,
    _server: Process,
}

impl Tenants {
    pub fn start() -> Tenants {
        let env = Env::sqlite();
        // No workers: jobs stay queued, so nothing but the requests changes them.
        let (server, url) = env.serve(0);
        let admin = env.create_key();
        let alice = uploader(&env, "alice");
        let mallory = uploader(&env, "mallory");
        Tenants {
            env,
            url,
            admin,
            alice,
            mallory,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            _server: server,
        }
    }

    /// A request to `path` with `key`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    /// `key` uploads a video (not a real one: no worker will look at it);
    /// returns its JSON.
    pub async fn upload(&self, key: &str) -> Value {
        let response = self
            .request(reqwest::Method::POST, "/v1/videos?title=mine", key)
            .body(vec![7u8; 4096])
            .send()
            .await
            .expect("POST /v1/videos");
        assert_eq!(response.status(), 201);
        response.json().await.expect("video JSON")
    }

    /// GET `path` with `key`: status and JSON body.
    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path, key)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The ids of the videos `key` lists.
    pub async fn listed_videos(&self, key: &str) -> Vec<String> {
        let (status, body) = self.get("/v1/videos", key).await;
        assert_eq!(status, 200, "{body}");
        ids(&body["videos"])
    }

    /// The ids of the jobs `key` lists.
    pub async fn listed_jobs(&self, key: &str) -> Vec<String> {
        let (status, body) = self.get("/v1/jobs", key).await;
        assert_eq!(status, 200, "{body}");
        ids(&body["jobs"])
    }
}

/// Creates an uploader key named `name` with the CLI; checks what it prints.
pub fn uploader(env: &Env, name: &str) -> String {
    let out = env.run(&["keys", "create", "--name", name, "--json"]);
    let value: Value = serde_json::from_str(out.trim()).expect("keys create --json prints JSON");
    assert_eq!(value["name"], name);
    assert_eq!(value["role"], "uploader", "the default role: {value}");
    value["key"].as_str().expect("key").to_string()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect()
}

/// The error message of a refusal, checked for the role it names.
pub async fn refusal(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("error JSON");
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
