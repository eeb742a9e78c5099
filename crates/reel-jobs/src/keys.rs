//! API keys: created once, shown once, stored only as a SHA-256 hash.

use rand::RngCore;
use reel_core::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::{JobStore, StoreError};

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
