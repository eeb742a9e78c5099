//! The server and API key that `reel ingest` and `reel upload` talk to.

use anyhow::Context;

use crate::config::Config;

/// `--server` and `--api-key`, shared by the client commands.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The server's URL (default: http:// + server.listen of the configuration).
    #[arg(long, env = "REEL_SERVER")]
    pub server: Option<String>,
    /// An API key (from `reel keys create`, or the admin key `reel serve` printed).
    #[arg(long, env = "REEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// A server to talk to, resolved.
pub struct Server {
    /// Its base URL, without a trailing `/`.
    pub url: String,
    /// The API key.
    pub api_key: String,
}

impl ServerArgs {
    /// The server and key, with the server defaulting to `server.listen`.
    pub fn resolve(&self, config: &Config) -> anyhow::Result<Server> {
        let api_key = self.api_key.clone().context(
            "an API key is needed: pass --api-key or set REEL_API_KEY (create one with `reel keys create --name NAME`)",
        )?;
        let url = self
            .server
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen));
        Ok(Server {
            url: url.trim_end_matches('/').to_string(),
            api_key,
        })
    }
}
