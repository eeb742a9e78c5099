//! Minting and verifying playback tokens: every refusal has its code, key
//! rotation keeps old tokens valid, and tampering anywhere is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use reel_token::{
    signed_path, split_signed_path, PublicKeySet, SigningKeySet, TokenError, VerifiedTokenCache,
    AUDIENCE,
};

const NOW: u64 = 1_800_000_000;
const VIDEO: &str = "0b9f3c62-8a1e-4a43-9d0e-2f6f1f3b7c11";

fn code(result: Result<impl std::fmt::Debug, TokenError>) -> &'static str {
    result.expect_err("refused").code()
}

#[test]
fn a_minted_token_verifies_for_its_video_until_it_expires() {
    let keys = SigningKeySet::generate();
    let public = keys.public();
    let token = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    let claims = public.verify(&token, VIDEO, NOW).expect("valid");
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.sub, VIDEO);
    assert_eq!((claims.iat, claims.exp), (NOW, NOW + 60));
    assert!(public.verify(&token, VIDEO, NOW + 59).is_ok());
    assert_eq!(
        code(public.verify(&token, VIDEO, NOW + 60)),
        "token_expired"
    );
    assert_eq!(
        code(public.verify(&token, "other", NOW)),
        "token_wrong_video"
    );
    assert_eq!(code(keys.mint(VIDEO, 0, NOW, &[])), "token_mint");
}

#[test]
fn the_header_names_the_signing_key_and_eddsa() {
    let keys = SigningKeySet::generate();
    let token = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    let header = token.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], keys.current_kid());
}

#[test]
fn unknown_keys_and_foreign_signers_are_refused() {
    let keys = SigningKeySet::generate();
    let stranger = SigningKeySet::generate();
    let token = stranger.mint(VIDEO, 60, NOW, &[]).expect("minted");
    assert_eq!(
        code(keys.public().verify(&token, VIDEO, NOW)),
        "token_unknown_kid"
    );
    // The stranger's signature under our kid: the header is signed too, so
    // swapping the kid breaks the signature.
    let ours = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[0] = ours.split('.').next().expect("header");
    let forged = parts.join(".");
    assert_eq!(
        code(keys.public().verify(&forged, VIDEO, NOW)),
        "token_bad_signature"
    );
}

#[test]
fn a_rotated_set_signs_with_the_new_key_and_verifies_old_tokens_until_removed() {
    let mut keys = SigningKeySet::generate();
    let old_kid = keys.current_kid().to_owned();
    let old = keys.mint(VIDEO, 600, NOW, &[]).expect("minted");
    let new_kid = keys.rotate();
    assert_ne!(old_kid, new_kid);
    assert_eq!(keys.kids(), vec![old_kid.clone(), new_kid.clone()]);
    let new = keys.mint(VIDEO, 600, NOW, &[]).expect("minted");
    let public = keys.public();
    assert!(public.verify(&old, VIDEO, NOW).is_ok());
    assert!(public.verify(&new, VIDEO, NOW).is_ok());
    assert!(keys.remove(&old_kid).expect("removable"));
    assert_eq!(
        code(keys.public().verify(&old, VIDEO, NOW)),
        "token_unknown_kid"
    );
    assert!(keys.public().verify(&new, VIDEO, NOW).is_ok());
    assert!(matches!(
        keys.remove(&new_kid),
        Err(reel_token::KeyError::LastKey(_))
    ));
}

#[test]
fn key_files_round_trip_and_the_jwks_has_no_private_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys/signing-keys.json");
    let mut first = SigningKeySet::load_or_generate(&path).expect("generated");
    first.rotate();
    first.save(&path).expect("saved");
    let again = SigningKeySet::load_or_generate(&path).expect("loaded");
    assert_eq!(again.kids(), first.kids());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = first.mint(VIDEO, 60, NOW, &[]).expect("minted");
    let jwks = again.public().to_json();
    assert!(!jwks.contains("\"d\""), "{jwks}");
    let public = PublicKeySet::from_json(&jwks, "jwks").expect("jwks parses");
    assert_eq!(public.kids(), first.kids());
    assert!(public.verify(&token, VIDEO, NOW).is_ok());
    // A JWKS with a private part is accepted as public and the part dropped.
    let public = PublicKeySet::from_json(&first.to_json(), "private").expect("parses");
    assert!(!public.to_json().contains("\"d\""));
    assert!(PublicKeySet::from_json("{\"keys\":[]}", "empty").is_err());
    assert!(PublicKeySet::from_json("not json", "junk").is_err());
    assert!(SigningKeySet::from_json(&jwks, "public only").is_err());
}

#[test]
fn referrer_domains_allow_themselves_and_subdomains_only() {
    let keys = SigningKeySet::generate();
    let token = keys
        .mint(VIDEO, 60, NOW, &["school.example".into()])
        .expect("minted");
    let claims = keys.public().verify(&token, VIDEO, NOW).expect("valid");
    assert_eq!(claims.referrers, vec!["school.example".to_owned()]);
    for ok in [
        "https://school.example/a",
        "http://www.School.example:8080/",
    ] {
        assert!(claims.check_referrer(Some(ok)).is_ok(), "{ok}");
    }
    for refused in [
        None,
        Some("https://evilschool.example/"),
        Some("https://school.example.evil/"),
        Some("not a url"),
    ] {
        assert_eq!(
            code(claims.check_referrer(refused)),
            "token_referrer",
            "{refused:?}"
        );
    }
    let open = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    let claims = keys.public().verify(&open, VIDEO, NOW).expect("valid");
    assert!(claims.check_referrer(None).is_ok());
}

#[test]
fn tokens_of_other_algorithms_or_shapes_are_refused() {
    let keys = SigningKeySet::generate();
    let public = keys.public();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"aud": AUDIENCE, "sub": VIDEO, "iat": NOW, "exp": NOW + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .expect("encoded");
    assert_eq!(code(public.verify(&hs256, VIDEO, NOW)), "token_algorithm");
    for junk in ["", "a", "a.b", "a.b.c", "...", "eyJ.eyJ.x"] {
        assert_eq!(
            code(public.verify(junk, VIDEO, NOW)),
            "token_malformed",
            "{junk:?}"
        );
    }
}

#[test]
fn the_cache_answers_again_until_expiry_and_stays_bounded() {
    let keys = SigningKeySet::generate();
    let public = keys.public();
    let cache = VerifiedTokenCache::new(3);
    let token = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    assert!(cache.verify(&public, &token, VIDEO, NOW).is_ok());
    assert_eq!(cache.len(), 1);
    // A cached token still answers for its own video only, and not after exp.
    let empty = PublicKeySet::default();
    assert!(
        cache.verify(&empty, &token, VIDEO, NOW + 1).is_ok(),
        "from the cache"
    );
    assert_eq!(
        code(cache.verify(&empty, &token, "other", NOW)),
        "token_wrong_video"
    );
    assert_eq!(
        code(cache.verify(&public, &token, VIDEO, NOW + 60)),
        "token_expired"
    );
    assert!(cache.is_empty());
    for ttl in 1..=10 {
        let token = keys.mint(VIDEO, ttl * 100, NOW, &[]).expect("minted");
        assert!(cache.verify(&public, &token, VIDEO, NOW).is_ok());
        assert!(cache.len() <= 3);
    }
    // Failures are not cached.
    assert!(cache.verify(&public, "a.b.c", VIDEO, NOW).is_err());
    assert!(cache.len() <= 3);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn a_verified_cache_hit_costs_microseconds() {
    let keys = SigningKeySet::generate();
    let public = keys.public();
    let cache = VerifiedTokenCache::new(1000);
    let token = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
    cache.verify(&public, &token, VIDEO, NOW).expect("valid");
    let rounds = 10_000u32;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        cache.verify(&public, &token, VIDEO, NOW).expect("valid");
    }
    let per_hit = started.elapsed() / rounds;
    // Generous for a debug build on a shared machine; a signature check is ~50x more.
    assert!(
        per_hit < std::time::Duration::from_micros(50),
        "{per_hit:?} per hit"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Changing any one character of a valid token makes it fail to verify.
    #[test]
    fn any_tampered_character_is_refused(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
        let keys = SigningKeySet::generate();
        let token = keys.mint(VIDEO, 60, NOW, &[]).expect("minted");
        let at = index.index(token.len());
        let mut tampered = token.clone();
        tampered.replace_range(at..at + 1, &replacement);
        prop_assume!(tampered != token);
        let result = keys.public().verify(&tampered, VIDEO, NOW);
        // A base64 change in padding bits can decode to the same bytes.
        if let Ok(claims) = result {
            let original = keys.public().verify(&token, VIDEO, NOW).expect("valid");
            prop_assert_eq!(claims, original);
        }
    }

    /// A token verifies exactly in [iat, exp) and for its video only.
    #[test]
    fn validity_window_and_subject(ttl in 1u64..100_000, offset in 0u64..200_000, video in "[a-z0-9-]{1,40}", other in "[a-z0-9-]{1,40}") {
        let keys = SigningKeySet::generate();
        let token = keys.mint(&video, ttl, NOW, &[]).expect("minted");
        let public = keys.public();
        let result = public.verify(&token, &video, NOW + offset);
        if offset < ttl {
            prop_assert!(result.is_ok());
        } else {
            prop_assert_eq!(result.expect_err("expired").code(), "token_expired");
        }
        if other != video && offset < ttl {
            prop_assert_eq!(public.verify(&token, &other, NOW).expect_err("other").code(), "token_wrong_video");
        }
    }

    /// signed_path and split_signed_path are inverse for any ids and files.
    #[test]
    fn signed_paths_round_trip(video in "[A-Za-z0-9-]{1,40}", token in "[A-Za-z0-9_.-]{1,200}", file in "[a-z0-9]{1,10}(/[a-z0-9.-]{1,20}){0,3}") {
        let path = signed_path(&video, &token, &file);
        let split = split_signed_path(&path).expect("signed");
        prop_assert_eq!(split.video, video.as_str());
        prop_assert_eq!(split.token, token.as_str());
        prop_assert_eq!(split.file, file.as_str());
        prop_assert_eq!(split.unsigned(), format!("/v/{video}/{file}"));
    }
}
