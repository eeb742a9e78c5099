//! API keys (created once, shown once, stored only as a SHA-256 hash) and
//! browser sessions (a random token, stored only as its SHA-256). Reading
//! them from a request (headers, cookies, Origin) is `reel-api`'s.

use rand::RngCore;
use reel_core::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use reel_jobs::store::{JobStore, StoreError};

/// The prefix of every key, so that leaked keys are easy to scan for.
pub const KEY_PREFIX: &str = "reel_";

/// A key as listed: never the secret.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyInfo {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its first characters, to recognise it.
    pub prefix: String,
    /// Creation time (µs since the epoch).
    pub created_at: i64,
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key named `name` and returns its secret, which is not stored.
pub async fn create_key(store: &JobStore, name: &str) -> Result<String, StoreError> {
    let mut random = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut random);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(random));
    sqlx::query(
        "INSERT INTO api_keys (id, name, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(reel_core::TaskId::new_random().to_string())
    .bind(name)
    .bind(
        secret
            .chars()
            .take(KEY_PREFIX.len() + 6)
            .collect::<String>(),
    )
    .bind(hash_secret(&secret))
    .bind(Timestamp::now().as_micros())
    .execute(store.pool())
    .await?;
    Ok(secret)
}

/// Whether `secret` is a valid, unrevoked key; returns its name.
pub async fn verify_key(store: &JobStore, secret: &str) -> Result<Option<String>, StoreError> {
    if !secret.starts_with(KEY_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash_secret(secret))
            .fetch_optional(store.pool())
            .await?;
    Ok(name)
}

/// Every key, without secrets.
pub async fn list_keys(store: &JobStore) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let rows = sqlx::query("SELECT id, name, prefix, created_at FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKeyInfo {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// How many unrevoked keys exist.
pub async fn count_keys(store: &JobStore) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
            .fetch_one(store.pool())
            .await?,
    )
}

/// The prefix of every session token.
const SESSION_PREFIX: &str = "rs_";

/// Starts a session for the key named `key_name` and returns its token
/// (only its hash is stored).
pub async fn create_session(
    store: &JobStore,
    key_name: &str,
    lifetime: std::time::Duration,
) -> Result<String, StoreError> {
    let mut random = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut random);
    let token = format!("{SESSION_PREFIX}{}", hex::encode(random));
    let now = Timestamp::now().as_micros();
    let lifetime = i64::try_from(lifetime.as_micros()).unwrap_or(i64::MAX);
    // Expired sessions are dropped as new ones start.
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now)
        .execute(store.pool())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (hash, key_name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash_secret(&token))
    .bind(key_name)
    .bind(now)
    .bind(now.saturating_add(lifetime))
    .execute(store.pool())
    .await?;
    Ok(token)
}

/// The key name of a live session, if `token` is one.
pub async fn verify_session(store: &JobStore, token: &str) -> Result<Option<String>, StoreError> {
    if !token.starts_with(SESSION_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let name: Option<String> =
        sqlx::query_scalar("SELECT key_name FROM sessions WHERE hash = $1 AND expires_at > $2")
            .bind(hash_secret(token))
            .bind(Timestamp::now().as_micros())
            .fetch_optional(store.pool())
            .await?;
    Ok(name)
}

/// Ends a session.
pub async fn delete_session(store: &JobStore, token: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE hash = $1")
        .bind(hash_secret(token))
        .execute(store.pool())
        .await?;
    Ok(())
}
