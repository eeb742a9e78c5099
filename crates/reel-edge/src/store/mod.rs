//! The cache index: the memory and disk tiers, the fills in flight and the
//! hit-for-pass markers, behind one short-held `std::sync::Mutex`.
//!
//! Tiers are inclusive: a completed fill lands in memory (chunks as the
//! upstream sent them, shared with the fill's waiters) and, when a disk tier
//! exists, is then written to a file. Losing the memory copy to eviction
//! leaves the disk copy serving.
//!
//! **Invariant:** for each tier, `policy.resident_bytes() + reserved <=
//! capacity`. Fills reserve their bytes before buffering them and commit the
//! reservation into the policy when they are stored, so in-flight bytes
//! count against the bound too. Nothing here awaits while holding the lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::cache_control::{Freshness, FreshnessState};
use crate::fill::{Fill, Forward, Variant};
use crate::key::CacheKey;
use crate::policy::{new_policy, EvictionPolicy, PolicyKind};
use reel_http::Validators;

/// Hit-for-pass markers kept at most; older ones are dropped first.
const MAX_PASS_MARKERS: usize = 10_000;
/// File name suffix of cache files, so a restart only removes our files.
pub(crate) const DISK_FILE_SUFFIX: &str = ".reel-edge";

/// A response head as the edge stores and replays it.
#[derive(Debug)]
pub(crate) struct ObjectMeta {
    pub(crate) status: StatusCode,
    /// The requests this response may serve (its `Vary`).
    pub(crate) variant: Variant,
    /// End-to-end headers, ready to send (no hop-by-hop headers, no
    /// `Content-Length`, `Age` or `X-Cache`).
    pub(crate) headers: HeaderMap,
    /// Body length; always known for stored objects.
    pub(crate) length: Option<u64>,
    pub(crate) freshness: Freshness,
    pub(crate) received_at: Instant,
    /// The `Age` the response had when it arrived.
    pub(crate) initial_age: Duration,
    pub(crate) validators: Validators,
}

impl ObjectMeta {
    /// RFC 9111 4.2.3, with the upstream's `Age` as the initial age.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        self.initial_age + now.saturating_duration_since(self.received_at)
    }
}

/// A file of the disk tier; removed from disk when the last user drops it,
/// so a reader that started before an eviction finishes its response.
#[derive(Debug)]
pub(crate) struct DiskFile {
    pub(crate) path: PathBuf,
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        // Usually dropped through `release_files` on a blocking thread.
        if let Err(error) = std::fs::remove_file(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), %error, "removing cache file failed");
            }
        }
    }
}

/// Where a cached body lives.
#[derive(Debug, Clone)]
pub(crate) enum StoredBody {
    Memory(Arc<[Bytes]>),
    Disk(Arc<DiskFile>),
}

/// A snapshot of one cached object.
#[derive(Debug, Clone)]
pub(crate) struct CachedObject {
    pub(crate) meta: Arc<ObjectMeta>,
    pub(crate) body: StoredBody,
    /// Identifies the body across header refreshes.
    pub(crate) body_id: u64,
}

/// What a request should do, decided atomically with the index.
pub(crate) enum Claim {
    /// Serve this fresh object.
    Fresh(CachedObject),
    /// Serve this stale object now; `revalidation`, when set, must be
    /// spawned by the caller (the background refresh).
    Stale {
        object: CachedObject,
        revalidation: Option<Arc<Fill>>,
    },
    /// Wait for this fill; `lead` means the caller created it and must
    /// spawn it.
    Wait { fill: Arc<Fill>, lead: bool },
    /// The key is known not to be cacheable: fetch it directly.
    Pass,
}

/// Which tier a reservation or statistic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TierKind {
    Memory,
    Disk,
}

/// Bytes held against a tier's capacity until committed or dropped.
pub(crate) struct Reservation {
    store: Arc<Store>,
    tier: TierKind,
    bytes: u64,
}

impl Reservation {
    /// Grows the reservation, evicting as needed; false if it cannot.
    pub(crate) fn grow(&mut self, extra_bytes: u64) -> bool {
        let mut evicted_files = Vec::new();
        let grown = {
            let mut inner = self.store.lock();
            let grown = inner.make_room(self.tier, extra_bytes, &mut evicted_files);
            if let (true, Some(tier)) = (grown, inner.tier_mut(self.tier)) {
                tier.reserved += extra_bytes;
            }
            grown
        };
        if grown {
            self.bytes += extra_bytes;
        }
        release_files(evicted_files);
        grown
    }
}

impl Reservation {
    /// Gives back part of the reservation.
    pub(crate) fn shrink(&mut self, fewer_bytes: u64) {
        let fewer_bytes = fewer_bytes.min(self.bytes);
        let mut inner = self.store.lock();
        if let Some(tier) = inner.tier_mut(self.tier) {
            tier.reserved -= fewer_bytes;
        }
        self.bytes -= fewer_bytes;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut inner = self.store.lock();
        if let Some(tier) = inner.tier_mut(self.tier) {
            tier.reserved -= self.bytes;
        }
    }
}

/// Occupancy of one tier.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TierStats {
    pub(crate) capacity: u64,
    /// Bytes of stored objects.
    pub(crate) stored: u64,
    /// Bytes reserved by fills and disk writes in progress.
    pub(crate) reserved: u64,
    pub(crate) objects: u64,
    pub(crate) evictions: u64,
}

/// Occupancy of the whole store.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreStats {
    pub(crate) memory: TierStats,
    pub(crate) disk: Option<TierStats>,
    pub(crate) inflight_fills: u64,
}

/// The cache index.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    hash_state: std::collections::hash_map::RandomState,
    disk_dir: Option<PathBuf>,
    next_id: AtomicU64,
    purge_epoch: AtomicU64,
}

struct Tier {
    policy: Box<dyn EvictionPolicy>,
    capacity: u64,
    reserved: u64,
    evictions: u64,
}

impl Tier {
    fn new(kind: PolicyKind, capacity: u64) -> Tier {
        Tier {
            policy: new_policy(kind, capacity),
            capacity,
            reserved: 0,
            evictions: 0,
        }
    }

    fn stats(&self) -> TierStats {
        TierStats {
            capacity: self.capacity,
            stored: self.policy.resident_bytes(),
            reserved: self.reserved,
            objects: self.policy.len() as u64,
            evictions: self.evictions,
        }
    }
}

struct Slot {
    /// The policy key: a keyed hash of the cache key.
    id: u64,
    body_id: u64,
    meta: Arc<ObjectMeta>,
    memory: Option<Arc<[Bytes]>>,
    disk: Option<Arc<DiskFile>>,
}

impl Slot {
    fn snapshot(&self) -> Option<CachedObject> {
        let body = match (&self.memory, &self.disk) {
            (Some(chunks), _) => StoredBody::Memory(chunks.clone()),
            (None, Some(file)) => StoredBody::Disk(file.clone()),
            (None, None) => return None,
        };
        Some(CachedObject {
            meta: self.meta.clone(),
            body,
            body_id: self.body_id,
        })
    }
}

struct Inner {
    slots: HashMap<CacheKey, Slot>,
    keys_by_id: HashMap<u64, CacheKey>,
    memory: Tier,
    disk: Option<Tier>,
    inflight: HashMap<CacheKey, Arc<Fill>>,
    passes: HashMap<CacheKey, Instant>,
}

impl Inner {
    fn tier_mut(&mut self, kind: TierKind) -> Option<&mut Tier> {
        match kind {
            TierKind::Memory => Some(&mut self.memory),
            TierKind::Disk => self.disk.as_mut(),
        }
    }

    /// Evicts from `kind` until `bytes` more fit; false if they cannot.
    fn make_room(
        &mut self,
        kind: TierKind,
        bytes: u64,
        evicted_files: &mut Vec<Arc<DiskFile>>,
    ) -> bool {
        loop {
            let Some(tier) = self.tier_mut(kind) else {
                return false;
            };
            if bytes > tier.capacity {
                return false;
            }
            if tier.policy.resident_bytes() + tier.reserved + bytes <= tier.capacity {
                return true;
            }
            let Some((victim_id, _)) = tier.policy.evict() else {
                return false;
            };
            tier.evictions += 1;
            self.forget_tier_copy(victim_id, kind, evicted_files);
        }
    }

    /// Drops the `kind` copy of object `id` after its policy evicted it.
    fn forget_tier_copy(
        &mut self,
        id: u64,
        kind: TierKind,
        evicted_files: &mut Vec<Arc<DiskFile>>,
    ) {
        let Some(key) = self.keys_by_id.get(&id).cloned() else {
            return;
        };
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        match kind {
            TierKind::Memory => slot.memory = None,
            TierKind::Disk => evicted_files.extend(slot.disk.take()),
        }
        if slot.memory.is_none() && slot.disk.is_none() {
            self.slots.remove(&key);
            self.keys_by_id.remove(&id);
        }
    }

    /// Removes `key` from both tiers.
    fn remove_slot(&mut self, key: &CacheKey, evicted_files: &mut Vec<Arc<DiskFile>>) -> bool {
        let Some(slot) = self.slots.remove(key) else {
            return false;
        };
        self.keys_by_id.remove(&slot.id);
        if slot.memory.is_some() {
            self.memory.policy.remove(slot.id);
        }
        if let Some(file) = slot.disk {
            if let Some(disk) = self.disk.as_mut() {
                disk.policy.remove(slot.id);
            }
            evicted_files.push(file);
        }
        true
    }

    fn remove_inflight(&mut self, fill: &Arc<Fill>) {
        if self
            .inflight
            .get(&fill.key)
            .is_some_and(|current| Arc::ptr_eq(current, fill))
        {
            self.inflight.remove(&fill.key);
        }
    }

    fn pass_active(&mut self, key: &CacheKey, now: Instant) -> bool {
        match self.passes.get(key) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.passes.remove(key);
                false
            }
            None => false,
        }
    }
}

impl Store {
    pub(crate) fn new(
        policy: PolicyKind,
        memory_capacity: u64,
        disk: Option<(PathBuf, u64)>,
    ) -> Store {
        let (disk_dir, disk_tier) = match disk {
            Some((dir, capacity)) => (Some(dir), Some(Tier::new(policy, capacity))),
            None => (None, None),
        };
        Store {
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                keys_by_id: HashMap::new(),
                memory: Tier::new(policy, memory_capacity),
                disk: disk_tier,
                inflight: HashMap::new(),
                passes: HashMap::new(),
            }),
            hash_state: std::collections::hash_map::RandomState::new(),
            disk_dir,
            next_id: AtomicU64::new(1),
            purge_epoch: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the index consistent before it can
        // panic, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn id_of(&self, key: &CacheKey) -> u64 {
        self.hash_state.hash_one(key.as_str())
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn disk_dir(&self) -> Option<&Path> {
        self.disk_dir.as_deref()
    }

    pub(crate) fn purge_epoch(&self) -> u64 {
        self.purge_epoch.load(Ordering::Acquire)
    }

    /// Looks `key` up for a request with `request` headers and decides what
    /// it does, registering a new fill (which sends `forward` upstream) when
    /// one is needed so concurrent requests join it. A stored object of
    /// another variant (`Vary`) counts as absent; the fill replaces it.
    pub(crate) fn claim(
        &self,
        key: &CacheKey,
        now: Instant,
        request: &HeaderMap,
        forward: Forward,
    ) -> Claim {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(slot) = inner.slots.get(key) {
            if let Some(object) = slot
                .snapshot()
                .filter(|object| object.meta.variant.matches(request))
            {
                if slot.memory.is_some() {
                    inner.memory.policy.touch(slot.id);
                }
                if let (Some(_), Some(disk)) = (&slot.disk, inner.disk.as_mut()) {
                    disk.policy.touch(slot.id);
                }
                match object.meta.freshness.state(object.meta.age(now)) {
                    FreshnessState::Fresh => return Claim::Fresh(object),
                    FreshnessState::StaleWhileRevalidate => {
                        let revalidation = if inner.inflight.contains_key(key) {
                            None
                        } else {
                            let fill =
                                Arc::new(Fill::new(key.clone(), Some(object.clone()), forward));
                            inner.inflight.insert(key.clone(), fill.clone());
                            Some(fill)
                        };
                        return Claim::Stale {
                            object,
                            revalidation,
                        };
                    }
                    FreshnessState::Stale => {
                        if let Some(fill) = inner.inflight.get(key) {
                            return Claim::Wait {
                                fill: fill.clone(),
                                lead: false,
                            };
                        }
                        let fill = Arc::new(Fill::new(key.clone(), Some(object), forward));
                        inner.inflight.insert(key.clone(), fill.clone());
                        return Claim::Wait { fill, lead: true };
                    }
                }
            }
        }
        if let Some(fill) = inner.inflight.get(key) {
            return Claim::Wait {
                fill: fill.clone(),
                lead: false,
            };
        }
        if inner.pass_active(key, now) {
            return Claim::Pass;
        }
        let fill = Arc::new(Fill::new(key.clone(), None, forward));
        inner.inflight.insert(key.clone(), fill.clone());
        Claim::Wait { fill, lead: true }
    }

    /// Registers a prefetch fill for `key` unless it is cached and fresh,
    /// already in flight, or known uncacheable.
    pub(crate) fn claim_prefetch(&self, key: &CacheKey, now: Instant) -> Option<Arc<Fill>> {
        let mut inner = self.lock();
        if inner.inflight.contains_key(key) || inner.pass_active(key, now) {
            return None;
        }
        let base = match inner.slots.get(key).and_then(Slot::snapshot) {
            Some(object) => {
                if object.meta.freshness.state(object.meta.age(now)) == FreshnessState::Fresh {
                    return None;
                }
                Some(object)
            }
            None => None,
        };
        let fill = Arc::new(Fill::new(key.clone(), base, Forward::default()));
        inner.inflight.insert(key.clone(), fill.clone());
        Some(fill)
    }

    /// Reserves `bytes` in a tier, evicting as needed; `None` if the tier
    /// does not exist or the bytes cannot fit next to other reservations.
    pub(crate) fn reserve(self: &Arc<Self>, tier: TierKind, bytes: u64) -> Option<Reservation> {
        let mut evicted_files = Vec::new();
        let reserved = {
            let mut inner = self.lock();
            let fits = inner.make_room(tier, bytes, &mut evicted_files);
            if let (true, Some(tier)) = (fits, inner.tier_mut(tier)) {
                tier.reserved += bytes;
            }
            fits
        };
        release_files(evicted_files);
        reserved.then(|| Reservation {
            store: self.clone(),
            tier,
            bytes,
        })
    }

    /// Ends `fill` without storing anything.
    pub(crate) fn abandon(&self, fill: &Arc<Fill>) {
        self.lock().remove_inflight(fill);
    }

    /// Ends `fill` and remembers for `pass_for` that its key is not
    /// cacheable, so requests go straight upstream without waiting.
    pub(crate) fn abandon_with_pass(&self, fill: &Arc<Fill>, pass_for: Duration) {
        let mut inner = self.lock();
        inner.remove_inflight(fill);
        let now = Instant::now();
        if inner.passes.len() >= MAX_PASS_MARKERS {
            inner.passes.retain(|_, until| *until > now);
            if inner.passes.len() >= MAX_PASS_MARKERS {
                inner.passes.clear();
            }
        }
        inner.passes.insert(fill.key.clone(), now + pass_for);
    }

    /// Stores the completed body of `fill` in the memory tier, committing
    /// `reservation` (which must hold the body's length), and ends the fill.
    /// Returns the new body id, or `None` if it was not stored (purged while
    /// in flight, or a hash collision with another key).
    pub(crate) fn store_fill(
        &self,
        fill: &Arc<Fill>,
        meta: Arc<ObjectMeta>,
        chunks: Arc<[Bytes]>,
        mut reservation: Reservation,
    ) -> Option<u64> {
        let length = meta.length.unwrap_or(0);
        debug_assert_eq!(reservation.tier, TierKind::Memory);
        debug_assert_eq!(reservation.bytes, length);
        let id = self.id_of(&fill.key);
        let mut evicted_files = Vec::new();
        let body_id = {
            let mut inner = self.lock();
            inner.remove_inflight(fill);
            let collides = inner
                .keys_by_id
                .get(&id)
                .is_some_and(|other| *other != fill.key);
            if fill.is_purged() || collides || reservation.bytes != length {
                None
            } else {
                inner.remove_slot(&fill.key, &mut evicted_files);
                inner.memory.reserved -= reservation.bytes;
                reservation.bytes = 0;
                inner.memory.policy.insert(id, length);
                let body_id = self.next_id();
                inner.keys_by_id.insert(id, fill.key.clone());
                inner.slots.insert(
                    fill.key.clone(),
                    Slot {
                        id,
                        body_id,
                        meta,
                        memory: Some(chunks),
                        disk: None,
                    },
                );
                Some(body_id)
            }
        };
        drop(reservation);
        release_files(evicted_files);
        body_id
    }

    /// Replaces the headers of the object with `body_id` after a 304, and
    /// ends `fill`.
    pub(crate) fn refresh(&self, fill: &Arc<Fill>, body_id: u64, meta: Arc<ObjectMeta>) {
        let mut inner = self.lock();
        inner.remove_inflight(fill);
        if fill.is_purged() {
            return;
        }
        if let Some(slot) = inner.slots.get_mut(&fill.key) {
            if slot.body_id == body_id {
                slot.meta = meta;
            }
        }
    }

    /// Adds the disk copy of an object written by a disk write that started
    /// at `epoch`. If the memory copy is gone the object comes back
    /// disk-only; if the key now holds another body, or anything was purged
    /// meanwhile, the file is discarded. Returns whether it was kept.
    pub(crate) fn attach_disk(
        &self,
        object: &CachedObjectKey,
        file: Arc<DiskFile>,
        mut reservation: Reservation,
    ) -> bool {
        let length = object.meta.length.unwrap_or(0);
        let id = self.id_of(&object.key);
        let mut discarded = vec![file.clone()];
        let kept = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let epoch_unchanged = self.purge_epoch() == object.epoch;
            let disk_exists = inner.disk.is_some();
            let kept = match inner.slots.get_mut(&object.key) {
                _ if !disk_exists || !epoch_unchanged || reservation.bytes != length => false,
                Some(slot) if slot.body_id == object.body_id && slot.disk.is_none() => {
                    slot.disk = Some(file);
                    true
                }
                Some(_) => false,
                None if inner.keys_by_id.contains_key(&id) => false,
                None => {
                    inner.keys_by_id.insert(id, object.key.clone());
                    inner.slots.insert(
                        object.key.clone(),
                        Slot {
                            id,
                            body_id: object.body_id,
                            meta: object.meta.clone(),
                            memory: None,
                            disk: Some(file),
                        },
                    );
                    true
                }
            };
            if let (true, Some(disk)) = (kept, inner.disk.as_mut()) {
                disk.reserved -= reservation.bytes;
                reservation.bytes = 0;
                disk.policy.insert(id, length);
                discarded.clear();
            }
            kept
        };
        drop(reservation);
        release_files(discarded);
        kept
    }

    /// Removes every object whose key `matches` from both tiers, stops
    /// in-flight fills of matching keys from being stored, and clears their
    /// pass markers. Returns how many objects were removed.
    pub(crate) fn purge(&self, matches: &dyn Fn(&str) -> bool) -> usize {
        let mut evicted_files = Vec::new();
        let removed = {
            let mut inner = self.lock();
            self.purge_epoch.fetch_add(1, Ordering::AcqRel);
            let keys: Vec<CacheKey> = inner
                .slots
                .keys()
                .filter(|key| matches(key.as_str()))
                .cloned()
                .collect();
            for key in &keys {
                inner.remove_slot(key, &mut evicted_files);
            }
            for (key, fill) in &inner.inflight {
                if matches(key.as_str()) {
                    fill.mark_purged();
                }
            }
            inner.passes.retain(|key, _| !matches(key.as_str()));
            keys.len()
        };
        release_files(evicted_files);
        removed
    }

    /// Removes the object stored under exactly `key` (RFC 9111 4.4: after
    /// an unsafe request), stops a fill in flight for it from being stored
    /// and clears its pass marker. Returns whether an object was removed.
    pub(crate) fn invalidate(&self, key: &CacheKey) -> bool {
        let mut evicted_files = Vec::new();
        let removed = {
            let mut inner = self.lock();
            // Disk writes that started before compare the epoch.
            self.purge_epoch.fetch_add(1, Ordering::AcqRel);
            let removed = inner.remove_slot(key, &mut evicted_files);
            if let Some(fill) = inner.inflight.get(key) {
                fill.mark_purged();
            }
            inner.passes.remove(key);
            removed
        };
        release_files(evicted_files);
        removed
    }

    pub(crate) fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            memory: inner.memory.stats(),
            disk: inner.disk.as_ref().map(Tier::stats),
            inflight_fills: inner.inflight.len() as u64,
        }
    }
}

/// What a disk write needs to attach its file to the index.
pub(crate) struct CachedObjectKey {
    pub(crate) key: CacheKey,
    pub(crate) body_id: u64,
    pub(crate) meta: Arc<ObjectMeta>,
    /// The purge epoch when the write started.
    pub(crate) epoch: u64,
}

/// Drops evicted disk files (which unlinks them) off the async threads.
fn release_files(files: Vec<Arc<DiskFile>>) {
    if files.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(files));
        }
        Err(_) => drop(files),
    }
}

/// Removes cache files a previous run left in `dir`: the index is not
/// persisted, so they can never be served again.
pub(crate) fn clear_disk_dir(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut n_removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(DISK_FILE_SUFFIX)
        {
            std::fs::remove_file(entry.path())?;
            n_removed += 1;
        }
    }
    Ok(n_removed)
}

#[cfg(test)]
mod tests;
