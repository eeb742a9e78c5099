//! A short-lived per-process memo of each video's visibility, so that the
//! origin's media routes (every segment request) do not read the database
//! each time.
//!
//! This process forgets an entry at once when it changes or deletes the
//! video; another API process sharing the database sees the change within
//! [`VisibilityCache::TTL`]. A missing video is remembered too (as `None`),
//! so a flood of requests for unknown ids costs one query per id per TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reel_core::VideoId;
use reel_model::Visibility;

/// Visibility by video id, each entry for [`VisibilityCache::TTL`].
pub struct VisibilityCache {
    entries: Mutex<HashMap<VideoId, (Option<Visibility>, Instant)>>,
    capacity: usize,
}

impl VisibilityCache {
    /// How long an answer is reused; the longest another API process may
    /// serve a video with its old visibility.
    pub const TTL: Duration = Duration::from_secs(2);

    /// A cache holding at most `capacity` videos.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The remembered answer for `id`, if still fresh: `Some(None)` is a
    /// video known not to exist.
    pub fn get(&self, id: VideoId) -> Option<Option<Visibility>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&id)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(visibility, _)| *visibility)
    }

    /// Remembers `visibility` (None: no such video) for `id`.
    pub fn put(&self, id: VideoId, visibility: Option<Visibility>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&id) {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(id, (visibility, Instant::now()));
    }

    /// Forgets `id` (its visibility changed or it was deleted).
    pub fn forget(&self, id: VideoId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_and_stays_within_capacity() {
        let cache = VisibilityCache::new(2);
        let (a, b, c) = (
            VideoId::new_random(),
            VideoId::new_random(),
            VideoId::new_random(),
        );
        assert_eq!(cache.get(a), None);
        cache.put(a, Some(Visibility::Private));
        cache.put(b, None);
        assert_eq!(cache.get(a), Some(Some(Visibility::Private)));
        assert_eq!(cache.get(b), Some(None));
        cache.put(c, Some(Visibility::Public));
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert_eq!(cache.get(c), Some(Some(Visibility::Public)));
        cache.forget(c);
        assert_eq!(cache.get(c), None);
    }
}
