//! Who a request comes from, as the API's authentication found it.
//!
//! `reel-api` reads the credentials (a bearer key, or a session cookie with
//! its Origin check) and hands the protocols it mounts (the tus server, the
//! Companion routes) a [`Caller`] in the request's extensions; they never
//! read credentials themselves.

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Anything: every owner's videos, uploads and jobs, edges, keys, and
    /// the engine's own jobs (verify, selftest).
    Admin,
    /// Its own videos, uploads and their jobs.
    Uploader,
}

impl Role {
    /// `admin` or `uploader`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Uploader => "uploader",
        }
    }

    /// The role named `text`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Self::Admin),
            "uploader" => Some(Self::Uploader),
            _ => None,
        }
    }
}

/// An authenticated caller: the API key a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's id, which owns what the key uploads.
    pub key_id: String,
    /// The key's name (unique).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Principal {
    /// Whether this caller may act on what `owner` (a key id) owns.
    pub fn may_act_for(&self, owner: Option<&str>) -> bool {
        self.role == Role::Admin || owner == Some(self.key_id.as_str())
    }
}

/// The outcome of authenticating a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No credentials at all.
    Anonymous,
    /// A valid key or session.
    Key(Principal),
    /// Credentials that are not valid, and why.
    Refused(&'static str),
}
