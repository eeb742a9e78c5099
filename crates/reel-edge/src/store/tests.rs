use super::*;
use crate::key::cache_key;

fn meta(length: u64, lifetime_secs: u64) -> Arc<ObjectMeta> {
    Arc::new(ObjectMeta {
        status: StatusCode::OK,
        variant: Variant::Any,
        headers: HeaderMap::new(),
        length: Some(length),
        freshness: Freshness {
            lifetime: Duration::from_secs(lifetime_secs),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            no_cache: false,
        },
        received_at: Instant::now(),
        initial_age: Duration::ZERO,
        validators: Validators::default(),
    })
}

fn fill_object(store: &Arc<Store>, path: &str, length: u64) -> Option<u64> {
    let key = cache_key(path).expect("valid key");
    let Claim::Wait { fill, lead: true } =
        store.claim(&key, Instant::now(), &HeaderMap::new(), Forward::default())
    else {
        panic!("expected a new fill for {path}");
    };
    let reservation = store.reserve(TierKind::Memory, length)?;
    let chunks: Arc<[Bytes]> = Arc::from(vec![Bytes::from(vec![0u8; length as usize])]);
    store.store_fill(&fill, meta(length, 60), chunks, reservation)
}

#[test]
fn memory_bound_holds_with_reservations() {
    let store = Arc::new(Store::new(PolicyKind::S3Fifo, 1000, None));
    let held = store.reserve(TierKind::Memory, 600).expect("fits");
    assert!(store.reserve(TierKind::Memory, 500).is_none());
    for object_idx in 0..20 {
        fill_object(&store, &format!("/o/{object_idx}"), 100).expect("fits");
        let stats = store.stats().memory;
        assert!(stats.stored + stats.reserved <= 1000, "{stats:?}");
    }
    drop(held);
    assert_eq!(store.stats().memory.reserved, 0);
    assert!(store.reserve(TierKind::Memory, 1001).is_none());
}

#[test]
fn concurrent_claims_share_one_fill() {
    let store = Arc::new(Store::new(PolicyKind::S3Fifo, 1000, None));
    let key = cache_key("/a").expect("valid key");
    let Claim::Wait { fill, lead: true } =
        store.claim(&key, Instant::now(), &HeaderMap::new(), Forward::default())
    else {
        panic!("first claim leads");
    };
    let Claim::Wait {
        fill: joined,
        lead: false,
    } = store.claim(&key, Instant::now(), &HeaderMap::new(), Forward::default())
    else {
        panic!("second claim joins");
    };
    assert!(Arc::ptr_eq(&fill, &joined));
    assert!(store.claim_prefetch(&key, Instant::now()).is_none());
    let reservation = store.reserve(TierKind::Memory, 3).expect("fits");
    let chunks: Arc<[Bytes]> = Arc::from(vec![Bytes::from_static(b"abc")]);
    store
        .store_fill(&fill, meta(3, 60), chunks, reservation)
        .expect("stored");
    assert!(matches!(
        store.claim(&key, Instant::now(), &HeaderMap::new(), Forward::default()),
        Claim::Fresh(_)
    ));
    assert!(store.claim_prefetch(&key, Instant::now()).is_none());
}

#[test]
fn purge_removes_prefix_and_blocks_inflight_store() {
    let store = Arc::new(Store::new(PolicyKind::Lru, 10_000, None));
    fill_object(&store, "/v/a/1.m4s", 10).expect("stored");
    fill_object(&store, "/v/a/2.m4s", 10).expect("stored");
    fill_object(&store, "/v/b/1.m4s", 10).expect("stored");
    let key = cache_key("/v/a/3.m4s").expect("valid key");
    let Claim::Wait { fill, lead: true } =
        store.claim(&key, Instant::now(), &HeaderMap::new(), Forward::default())
    else {
        panic!("new fill");
    };
    assert_eq!(store.purge(&|key| key.starts_with("/v/a/")), 2);
    let reservation = store.reserve(TierKind::Memory, 1).expect("fits");
    let chunks: Arc<[Bytes]> = Arc::from(vec![Bytes::from_static(b"x")]);
    assert!(store
        .store_fill(&fill, meta(1, 60), chunks, reservation)
        .is_none());
    assert_eq!(store.stats().memory.objects, 1);
    assert_eq!(store.stats().memory.stored, 10);
    assert_eq!(store.stats().memory.reserved, 0);
}
