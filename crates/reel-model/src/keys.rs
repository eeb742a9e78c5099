//! API keys (created once, shown once, stored only as a SHA-256 hash) and
//! browser sessions (a random token, stored only as its SHA-256). Reading
//! them from a request (headers, cookies, Origin) is `reel-api`'s.

use rand::RngCore;
use reel_core::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use reel_jobs::store::{JobStore, StoreError};

use crate::caller::{Principal, Role};

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
    /// What it may do.
    pub role: Role,
    /// Creation time (µs since the epoch).
    pub created_at: i64,
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Names are unique: another key has this one.
    #[error("a key named {0:?} already exists; pick another name")]
    NameTaken(String),
    /// The name is empty or too long.
    #[error("a key name must be 1 to 100 characters, not {0:?}")]
    BadName(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an uploader key named `name` and returns its secret, which is not stored.
pub async fn create_key(store: &JobStore, name: &str) -> Result<String, KeyError> {
    create_key_with_role(store, name, Role::Uploader).await
}

/// Creates a key named `name` with `role`; returns its secret, which is not
/// stored. Names are unique.
pub async fn create_key_with_role(
    store: &JobStore,
    name: &str,
    role: Role,
) -> Result<String, KeyError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(KeyError::BadName(name.to_string()));
    }
    let mut random = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut random);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(random));
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE name = $1")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::from)?;
    if taken > 0 {
        return Err(KeyError::NameTaken(name.to_string()));
    }
    let inserted = sqlx::query(
        "INSERT INTO api_keys (id, name, prefix, hash, created_at, role) VALUES ($1, $2, $3, $4, $5, $6)",
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
    .bind(role.as_str())
    .execute(store.pool())
    .await;
    match inserted {
        Ok(_) => Ok(secret),
        // Another process took the name between the check and the insert.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(KeyError::NameTaken(name.to_string()))
        }
        Err(error) => Err(StoreError::from(error).into()),
    }
}

fn principal_from_row(row: &sqlx::any::AnyRow) -> Result<Principal, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(Principal {
        key_id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            table: "api_keys",
            detail: format!("role {role:?}"),
        })?,
    })
}

/// Whether `secret` is a valid, unrevoked key; returns whom it acts for.
pub async fn verify_key(store: &JobStore, secret: &str) -> Result<Option<Principal>, StoreError> {
    if !secret.starts_with(KEY_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let row =
        sqlx::query("SELECT id, name, role FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash_secret(secret))
            .fetch_optional(store.pool())
            .await?;
    row.as_ref().map(principal_from_row).transpose()
}

/// Every key, without secrets.
pub async fn list_keys(store: &JobStore) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let rows = sqlx::query("SELECT id, name, prefix, role, created_at FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKeyInfo {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                role: Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Uploader),
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

/// Starts a session for `key` and returns its token (only its hash is stored).
pub async fn create_session(
    store: &JobStore,
    key: &Principal,
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
        "INSERT INTO sessions (hash, key_name, key_id, created_at, expires_at) VALUES ($1, $2, $5, $3, $4)",
    )
    .bind(hash_secret(&token))
    .bind(&key.name)
    .bind(now)
    .bind(now.saturating_add(lifetime))
    .bind(&key.key_id)
    .execute(store.pool())
    .await?;
    Ok(token)
}

/// The key of a live session, if `token` is one (and its key is not revoked).
pub async fn verify_session(
    store: &JobStore,
    token: &str,
) -> Result<Option<Principal>, StoreError> {
    if !token.starts_with(SESSION_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT k.id, k.name, k.role FROM sessions s JOIN api_keys k ON k.id = s.key_id \
         WHERE s.hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
    )
    .bind(hash_secret(token))
    .bind(Timestamp::now().as_micros())
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(principal_from_row).transpose()
}

/// Ends a session.
pub async fn delete_session(store: &JobStore, token: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE hash = $1")
        .bind(hash_secret(token))
        .execute(store.pool())
        .await?;
    Ok(())
}
