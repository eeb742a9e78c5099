//! Byte-weighted eviction policies (S3-FIFO and LRU) and a trace replayer.
//!
//! A policy only decides *which* object leaves; the caller owns the bytes
//! and the capacity check (`while resident > capacity { evict() }`). Objects
//! are named by a `u64` key so the same code serves the live cache (a keyed
//! hash of the cache key) and trace replays (the trace's object ids).
//!
//! Both queues use lazy deletion: a queue slot carries the generation of the
//! object it was pushed for, and slots whose generation no longer matches
//! are skipped when they reach the head. That keeps every operation O(1)
//! amortised without a linked list.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Which eviction policy a cache tier (or a replay) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// S3-FIFO (Yang et al., SOSP'23), byte-weighted: a small FIFO holding
    /// about 10% of the bytes filters one-hit wonders, a main FIFO with
    /// 2-bit frequencies keeps reused objects, and a ghost queue of recently
    /// evicted keys sends returning objects straight to the main FIFO.
    S3Fifo,
    /// Least recently used, byte-weighted. Kept as the baseline for replays.
    Lru,
}

/// Hit counts of a trace replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayStats {
    /// Requests in the trace.
    pub requests: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Bytes requested.
    pub bytes_requested: u64,
    /// Bytes answered from the cache.
    pub bytes_hit: u64,
}

impl ReplayStats {
    /// Fraction of requests that hit, in `[0, 1]`.
    pub fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.hits as f64 / self.requests as f64
    }

    /// Fraction of requested bytes that hit, in `[0, 1]`.
    pub fn byte_hit_ratio(&self) -> f64 {
        if self.bytes_requested == 0 {
            return 0.0;
        }
        self.bytes_hit as f64 / self.bytes_requested as f64
    }
}

/// Replays `trace` (object key, object size in bytes) through a cache of
/// `capacity_bytes` using `policy`, and counts hits. A miss inserts the
/// object; objects larger than the capacity are never inserted. Pure and
/// deterministic: no clock, no IO.
pub fn replay(
    policy: PolicyKind,
    capacity_bytes: u64,
    trace: impl Iterator<Item = (u64, u64)>,
) -> ReplayStats {
    let mut cache = new_policy(policy, capacity_bytes);
    let mut stats = ReplayStats::default();
    for (key, size) in trace {
        stats.requests += 1;
        stats.bytes_requested += size;
        if cache.touch(key) {
            stats.hits += 1;
            stats.bytes_hit += size;
            continue;
        }
        if size > capacity_bytes {
            continue;
        }
        cache.insert(key, size);
        while cache.resident_bytes() > capacity_bytes {
            if cache.evict().is_none() {
                break;
            }
        }
    }
    stats
}

/// What the cache tiers need from a policy.
pub(crate) trait EvictionPolicy: Send {
    /// Records a hit; returns whether `key` is resident.
    fn touch(&mut self, key: u64) -> bool;
    /// Adds a resident object. An already resident `key` is replaced.
    fn insert(&mut self, key: u64, size: u64);
    /// Forgets a resident object (purge, replacement); false if absent.
    fn remove(&mut self, key: u64) -> bool;
    /// Chooses and forgets one victim, returning its key and size.
    fn evict(&mut self) -> Option<(u64, u64)>;
    /// Sum of the sizes of resident objects.
    fn resident_bytes(&self) -> u64;
    /// Number of resident objects.
    fn len(&self) -> usize;
}

pub(crate) fn new_policy(kind: PolicyKind, capacity_bytes: u64) -> Box<dyn EvictionPolicy> {
    match kind {
        PolicyKind::S3Fifo => Box::new(S3Fifo::new(capacity_bytes)),
        PolicyKind::Lru => Box::new(Lru::default()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

#[derive(Debug)]
struct S3Object {
    size: u64,
    /// Saturating access count, 0..=3 (two bits in the paper).
    frequency: u8,
    queue: Queue,
    generation: u64,
}

/// Byte-weighted S3-FIFO.
struct S3Fifo {
    small_target_bytes: u64,
    ghost_capacity_bytes: u64,
    objects: HashMap<u64, S3Object>,
    small: VecDeque<(u64, u64)>,
    main: VecDeque<(u64, u64)>,
    small_bytes: u64,
    main_bytes: u64,
    /// Key -> generation of its newest ghost slot.
    ghost_members: HashMap<u64, u64>,
    ghost: VecDeque<(u64, u64, u64)>,
    ghost_bytes: u64,
    next_generation: u64,
}

impl S3Fifo {
    fn new(capacity_bytes: u64) -> S3Fifo {
        // The paper sizes S at 10% of the cache and G to remember as many
        // objects as M holds; byte-weighted, G remembers M's bytes.
        let small_target_bytes = (capacity_bytes / 10).max(1);
        S3Fifo {
            small_target_bytes,
            ghost_capacity_bytes: capacity_bytes - capacity_bytes / 10,
            objects: HashMap::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_bytes: 0,
            main_bytes: 0,
            ghost_members: HashMap::new(),
            ghost: VecDeque::new(),
            ghost_bytes: 0,
            next_generation: 0,
        }
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn remember_ghost(&mut self, key: u64, size: u64) {
        let generation = self.generation();
        self.ghost_members.insert(key, generation);
        self.ghost.push_back((key, size, generation));
        self.ghost_bytes += size;
        while self.ghost_bytes > self.ghost_capacity_bytes {
            let Some((old_key, old_size, old_generation)) = self.ghost.pop_front() else {
                break;
            };
            self.ghost_bytes -= old_size;
            if self.ghost_members.get(&old_key) == Some(&old_generation) {
                self.ghost_members.remove(&old_key);
            }
        }
    }

    /// Pops the head of S: reused objects move to M, the others leave.
    fn evict_small(&mut self) -> Option<Option<(u64, u64)>> {
        let (key, generation) = self.small.pop_front()?;
        let Some(object) = self.objects.get_mut(&key) else {
            return Some(None);
        };
        if object.generation != generation || object.queue != Queue::Small {
            return Some(None);
        }
        let size = object.size;
        self.small_bytes -= size;
        if object.frequency > 0 {
            object.frequency = 0;
            object.queue = Queue::Main;
            self.main_bytes += size;
            self.main.push_back((key, generation));
            return Some(None);
        }
        self.objects.remove(&key);
        self.remember_ghost(key, size);
        Some(Some((key, size)))
    }

    /// Pops the head of M: objects used since their last pass get another
    /// round with one less credit, the others leave.
    fn evict_main(&mut self) -> Option<Option<(u64, u64)>> {
        let (key, generation) = self.main.pop_front()?;
        let Some(object) = self.objects.get_mut(&key) else {
            return Some(None);
        };
        if object.generation != generation || object.queue != Queue::Main {
            return Some(None);
        }
        if object.frequency > 0 {
            object.frequency -= 1;
            self.main.push_back((key, generation));
            return Some(None);
        }
        let size = object.size;
        self.main_bytes -= size;
        self.objects.remove(&key);
        Some(Some((key, size)))
    }
}

impl EvictionPolicy for S3Fifo {
    fn touch(&mut self, key: u64) -> bool {
        match self.objects.get_mut(&key) {
            Some(object) => {
                object.frequency = (object.frequency + 1).min(3);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64, size: u64) {
        self.remove(key);
        let generation = self.generation();
        let queue = if self.ghost_members.remove(&key).is_some() {
            self.main_bytes += size;
            self.main.push_back((key, generation));
            Queue::Main
        } else {
            self.small_bytes += size;
            self.small.push_back((key, generation));
            Queue::Small
        };
        self.objects.insert(
            key,
            S3Object {
                size,
                frequency: 0,
                queue,
                generation,
            },
        );
    }

    fn remove(&mut self, key: u64) -> bool {
        let Some(object) = self.objects.remove(&key) else {
            return false;
        };
        match object.queue {
            Queue::Small => self.small_bytes -= object.size,
            Queue::Main => self.main_bytes -= object.size,
        }
        true
    }

    fn evict(&mut self) -> Option<(u64, u64)> {
        // Each round either evicts, drops a stale slot, moves an object from
        // S to M, or spends one frequency credit in M, so it terminates.
        loop {
            if self.objects.is_empty() {
                self.small.clear();
                self.main.clear();
                return None;
            }
            let from_small = self.small_bytes >= self.small_target_bytes || self.main_bytes == 0;
            let popped = if from_small {
                self.evict_small().or_else(|| self.evict_main())
            } else {
                self.evict_main().or_else(|| self.evict_small())
            };
            match popped {
                Some(Some(victim)) => return Some(victim),
                Some(None) => continue,
                None => return None,
            }
        }
    }

    fn resident_bytes(&self) -> u64 {
        self.small_bytes + self.main_bytes
    }

    fn len(&self) -> usize {
        self.objects.len()
    }
}

/// Byte-weighted LRU: a recency queue with lazy deletion, compacted when
/// stale slots outnumber live ones.
#[derive(Default)]
struct Lru {
    /// Key -> (size, stamp of its live queue slot).
    objects: HashMap<u64, (u64, u64)>,
    queue: VecDeque<(u64, u64)>,
    resident_bytes: u64,
    next_stamp: u64,
}

impl Lru {
    fn push(&mut self, key: u64) -> u64 {
        self.next_stamp += 1;
        let stamp = self.next_stamp;
        self.queue.push_back((key, stamp));
        if self.queue.len() > 4 * self.objects.len() + 64 {
            let objects = &self.objects;
            self.queue
                .retain(|(key, stamp)| objects.get(key).is_some_and(|(_, live)| live == stamp));
        }
        stamp
    }
}

impl EvictionPolicy for Lru {
    fn touch(&mut self, key: u64) -> bool {
        if !self.objects.contains_key(&key) {
            return false;
        }
        // The new slot is pushed before the stamp is updated, so compaction
        // inside push() keeps the old slot; it is skipped later as stale.
        let stamp = self.push(key);
        if let Some(object) = self.objects.get_mut(&key) {
            object.1 = stamp;
        }
        true
    }

    fn insert(&mut self, key: u64, size: u64) {
        self.remove(key);
        self.objects.insert(key, (size, 0));
        self.resident_bytes += size;
        let stamp = self.push(key);
        if let Some(object) = self.objects.get_mut(&key) {
            object.1 = stamp;
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.objects.remove(&key) {
            Some((size, _)) => {
                self.resident_bytes -= size;
                true
            }
            None => false,
        }
    }

    fn evict(&mut self) -> Option<(u64, u64)> {
        while let Some((key, stamp)) = self.queue.pop_front() {
            if let Some(&(size, live_stamp)) = self.objects.get(&key) {
                if live_stamp == stamp {
                    self.objects.remove(&key);
                    self.resident_bytes -= size;
                    return Some((key, size));
                }
            }
        }
        None
    }

    fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    fn len(&self) -> usize {
        self.objects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny deterministic generator, so traces are the same
    /// on every run without a `rand` dependency.
    struct SplitMix(u64);

    impl SplitMix {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn next_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A Zipf(`exponent`) trace over `n_objects` keys (rank 0 the most
    /// popular), sampled by inverting the cumulative distribution. Keys are
    /// scrambled so popularity does not follow key order.
    fn zipf_trace(n_objects: usize, exponent: f64, n_requests: usize, seed: u64) -> Vec<u64> {
        let mut cumulative = Vec::with_capacity(n_objects);
        let mut total = 0.0;
        for rank in 1..=n_objects {
            total += 1.0 / (rank as f64).powf(exponent);
            cumulative.push(total);
        }
        let mut rng = SplitMix(seed);
        (0..n_requests)
            .map(|_| {
                let target = rng.next_f64() * total;
                let rank = cumulative.partition_point(|&value| value < target);
                (rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            })
            .collect()
    }

    fn compare(capacity_objects: u64, sizes: impl Fn(u64) -> u64) -> (f64, f64) {
        let trace = zipf_trace(100_000, 0.9, 1_000_000, 7);
        let mean_size = 64 * 1024;
        let capacity = capacity_objects * mean_size;
        let s3fifo = replay(
            PolicyKind::S3Fifo,
            capacity,
            trace.iter().map(|&key| (key, sizes(key))),
        );
        let lru = replay(
            PolicyKind::Lru,
            capacity,
            trace.iter().map(|&key| (key, sizes(key))),
        );
        (s3fifo.hit_ratio(), lru.hit_ratio())
    }

    #[test]
    fn s3fifo_beats_lru_on_zipf_by_five_points() {
        // 100k objects, 1M requests, Zipf(0.9), cache of 1% of the objects.
        let (s3fifo, lru) = compare(1_000, |_| 64 * 1024);
        eprintln!(
            "zipf(0.9) equal sizes: s3-fifo {:.2}% lru {:.2}%",
            s3fifo * 100.0,
            lru * 100.0
        );
        assert!(
            s3fifo - lru >= 0.05,
            "s3-fifo {s3fifo:.4} should beat lru {lru:.4} by 5 points"
        );
    }

    #[test]
    fn s3fifo_beats_lru_on_zipf_with_mixed_sizes() {
        // Sizes from 16 KiB to 112 KiB, a function of the key.
        let (s3fifo, lru) = compare(1_000, |key| (16 + (key >> 7) % 97) * 1024);
        eprintln!(
            "zipf(0.9) mixed sizes: s3-fifo {:.2}% lru {:.2}%",
            s3fifo * 100.0,
            lru * 100.0
        );
        assert!(
            s3fifo - lru >= 0.05,
            "s3-fifo {s3fifo:.4} should beat lru {lru:.4} by 5 points"
        );
    }

    fn check_bounded(kind: PolicyKind) {
        let capacity = 10_000;
        let mut cache = new_policy(kind, capacity);
        let mut rng = SplitMix(3);
        for _ in 0..20_000 {
            let key = rng.next_u64() % 500;
            let size = 1 + rng.next_u64() % 900;
            match rng.next_u64() % 4 {
                0 => {
                    cache.remove(key);
                }
                1 | 2 => {
                    if !cache.touch(key) {
                        cache.insert(key, size);
                    }
                }
                _ => {
                    cache.insert(key, size);
                }
            }
            while cache.resident_bytes() > capacity {
                assert!(cache.evict().is_some(), "{kind:?} over capacity but empty");
            }
        }
        let mut drained = 0;
        while let Some((_, size)) = cache.evict() {
            drained += size;
        }
        assert_eq!(cache.resident_bytes(), 0);
        assert!(drained <= capacity);
    }

    #[test]
    fn policies_account_bytes_exactly() {
        check_bounded(PolicyKind::S3Fifo);
        check_bounded(PolicyKind::Lru);
    }

    #[test]
    fn s3fifo_sends_ghosts_to_main() {
        let mut cache = S3Fifo::new(1000);
        cache.insert(1, 100);
        assert_eq!(cache.evict(), Some((1, 100)));
        cache.insert(1, 100);
        assert_eq!(
            cache.objects.get(&1).map(|object| object.queue),
            Some(Queue::Main)
        );
    }

    #[test]
    fn lru_evicts_least_recent() {
        let mut cache = Lru::default();
        cache.insert(1, 10);
        cache.insert(2, 10);
        cache.insert(3, 10);
        assert!(cache.touch(1));
        assert_eq!(cache.evict(), Some((2, 10)));
        assert_eq!(cache.evict(), Some((3, 10)));
        assert_eq!(cache.evict(), Some((1, 10)));
        assert_eq!(cache.evict(), None);
    }
}
