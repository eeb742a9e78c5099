//! A bounded cache of verified tokens, so a hit costs a map look-up
//! instead of a signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Claims, PublicKeySet, TokenError};

/// Verified claims by token string, each kept until its `exp`. Only
/// successes are cached; [`VerifiedTokenCache::clear`] it when the key set
/// changes (a removed key must stop opening videos at once).
pub struct VerifiedTokenCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Arc<Claims>>>,
}

impl VerifiedTokenCache {
    /// A cache holding at most `capacity` tokens (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// [`PublicKeySet::verify`], answered from the cache when `token` was
    /// verified before and has not expired.
    pub fn verify(
        &self,
        keys: &PublicKeySet,
        token: &str,
        video: &str,
        now: u64,
    ) -> Result<Arc<Claims>, TokenError> {
        let cached = self.lock().get(token).cloned();
        if let Some(claims) = cached {
            if now >= claims.exp {
                self.lock().remove(token);
                return Err(TokenError::Expired);
            }
            if claims.sub != video {
                return Err(TokenError::WrongVideo);
            }
            return Ok(claims);
        }
        let claims = Arc::new(keys.verify(token, video, now)?);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, claims| claims.exp > now);
        }
        if entries.len() >= self.capacity {
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(token.to_owned(), Arc::clone(&claims));
        Ok(claims)
    }

    /// Forgets every verified token.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Claims>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
