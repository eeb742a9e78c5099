//! Content steering: the pathway order from the manifest and the steering server, reloaded
//! every TTL, skipping pathways that failed.

use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use crate::model::{Format, Manifest};

/// The pathways in steering order, and where to ask again.
pub(crate) struct Steering {
    pub(crate) server: Option<Url>,
    pub(crate) order: Vec<String>,
    pub(crate) ttl: Duration,
    pub(crate) loaded: Instant,
    /// DASH steering: `_DASH_pathway` and `_DASH_throughput` in the query.
    pub(crate) dash: bool,
}

impl Steering {
    /// The manifest's steering server and initial pathway, then its pathways in order.
    pub(crate) fn new(manifest: &Manifest) -> Steering {
        let steering = manifest.steering.as_ref();
        Steering {
            server: steering.map(|tag| tag.server.clone()),
            order: steering
                .and_then(|tag| tag.initial.clone())
                .into_iter()
                .chain(manifest.pathways())
                .collect(),
            ttl: Duration::from_secs(300),
            loaded: Instant::now(),
            dash: manifest.format == Format::Dash,
        }
    }

    /// Asks the steering server (if any); a failed request keeps the current order.
    pub(crate) async fn reload(
        &mut self,
        client: &reqwest::Client,
        current: &str,
        throughput_bps: u64,
    ) {
        let Some(server) = &self.server else {
            return;
        };
        let mut url = server.clone();
        let (pathway_key, throughput_key) = if self.dash {
            ("_DASH_pathway", "_DASH_throughput")
        } else {
            ("_HLS_pathway", "_HLS_throughput")
        };
        url.query_pairs_mut()
            .append_pair(pathway_key, current)
            .append_pair(throughput_key, &throughput_bps.to_string());
        self.loaded = Instant::now();
        let Ok(response) = client.get(url).send().await else {
            return;
        };
        let Ok(manifest) = response.json::<Value>().await else {
            return;
        };
        let server = server.clone();
        self.apply(&server, &manifest);
    }

    /// Takes a steering manifest's answer: the pathway order (`PATHWAY-PRIORITY` for HLS,
    /// `SERVICE-LOCATION-PRIORITY` for DASH), the TTL and the reload URI.
    pub(crate) fn apply(&mut self, server: &Url, manifest: &Value) {
        let order = manifest["PATHWAY-PRIORITY"]
            .as_array()
            .or_else(|| manifest["SERVICE-LOCATION-PRIORITY"].as_array());
        if let Some(order) = order {
            let order: Vec<String> = order
                .iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect();
            if !order.is_empty() {
                self.order = order;
            }
        }
        if let Some(ttl) = manifest["TTL"].as_u64() {
            self.ttl = Duration::from_secs(ttl.clamp(1, 86_400));
        }
        if let Some(reload) = manifest["RELOAD-URI"].as_str() {
            if let Ok(next) = server.join(reload) {
                self.server = Some(next);
            }
        }
    }

    /// The best available pathway not excluded, or `None` when every one is.
    pub(crate) fn best(&self, available: &[String], excluded: &[String]) -> Option<String> {
        self.order
            .iter()
            .chain(available.iter())
            .find(|id| available.contains(id) && !excluded.contains(id))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steering_answers_in_either_protocol_set_the_order() {
        let server = Url::parse("http://router/v1/steering/x?proto=dash").expect("url");
        let mut steering = Steering {
            server: Some(server.clone()),
            order: vec!["a".to_string(), "b".to_string()],
            ttl: Duration::from_secs(300),
            loaded: Instant::now(),
            dash: true,
        };
        let available = ["a".to_string(), "b".to_string()];
        steering.apply(
            &server,
            &json!({"VERSION": 1, "TTL": 4, "RELOAD-URI": "/v1/steering/x?proto=dash&n=1",
                    "SERVICE-LOCATION-PRIORITY": ["b", "a"]}),
        );
        assert_eq!(steering.order, ["b", "a"]);
        assert_eq!(steering.best(&available, &[]).as_deref(), Some("b"));
        assert_eq!(
            steering.best(&available, &["b".to_string()]).as_deref(),
            Some("a")
        );
        assert_eq!(steering.best(&available, &available), None);
        assert_eq!(steering.ttl, Duration::from_secs(4));
        assert_eq!(
            steering.server.as_ref().map(Url::as_str),
            Some("http://router/v1/steering/x?proto=dash&n=1")
        );
        steering.apply(&server, &json!({"PATHWAY-PRIORITY": ["a", "b"]}));
        assert_eq!(steering.order, ["a", "b"]);
        steering.apply(&server, &json!({"PATHWAY-PRIORITY": []}));
        assert_eq!(steering.order, ["a", "b"]);
        // A pathway the server names but the manifest does not have is never chosen.
        steering.apply(&server, &json!({"PATHWAY-PRIORITY": ["z"]}));
        assert_eq!(steering.best(&available, &[]).as_deref(), Some("a"));
    }
}
