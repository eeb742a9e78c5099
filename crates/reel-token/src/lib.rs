//! Signed playback tokens for private videos.
//!
//! A token is a compact JWT signed with Ed25519 (`alg: EdDSA`), with the
//! signing key's id in the header (`kid`) and the claims of [`Claims`]:
//! audience [`AUDIENCE`], subject = the video id, `iat`, `exp` and optional
//! allowed referrer domains. The origin holds a [`SigningKeySet`] (a private
//! JWK set in its data dir: the newest key signs, every key in the set
//! verifies until it is removed, so old tokens keep working across a
//! rotation until they expire); edges hold only the [`PublicKeySet`] (the
//! JWKS the origin serves at [`JWKS_PATH`]) and verify tokens themselves.
//!
//! The token sits in the URL path, `/v/{video}/t/{token}/{file...}`
//! ([`signed_path`], [`split_signed_path`]), so every relative URI inside a
//! manifest inherits it, and the token-less [`SignedPath::unsigned`] path is
//! what caches key on. [`VerifiedTokenCache`] remembers verified tokens until
//! their expiry so a request with an already seen token costs a map look-up.

mod cache;
mod keys;
mod path;
mod token;

pub use cache::VerifiedTokenCache;
pub use keys::{KeyError, PublicKeySet, SigningKeySet};
pub use path::{signed_path, split_signed_path, SignedPath};
pub use token::{unix_now, Claims, TokenError};

/// The `aud` claim of every playback token (versioned: a change of the
/// claims' meaning gets a new audience, and old verifiers refuse it).
pub const AUDIENCE: &str = "reel-playback/1";

/// Where the origin serves the public key set for edges and other servers.
pub const JWKS_PATH: &str = "/.well-known/reel-jwks.json";
