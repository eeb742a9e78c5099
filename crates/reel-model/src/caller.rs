//! Who a request comes from, as the API's authentication found it.
//!
//! `reel-api` reads the credentials (a bearer key, or a session cookie with
//! its Origin check) and hands the protocols it mounts (the tus server, the
//! Companion routes) a [`Caller`] in the request's extensions; they never
//! read credentials themselves.

/// An authenticated caller: the API key a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's name, which owns what the key uploads.
    pub name: String,
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
