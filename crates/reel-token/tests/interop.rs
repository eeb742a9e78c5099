//! Another server verifies a reel token with nothing but the JWKS:
//! `tests/clients/verify-token.py` (PyJWT + cryptography), the README's
//! verification example.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reel_token::{unix_now, SigningKeySet};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients")
}

fn verify_with_pyjwt(jwks: &Path, video: &str, token: &str) -> Output {
    let python = clients_dir().join(".venv/bin/python");
    Command::new(&python)
        .arg(clients_dir().join("verify-token.py"))
        .arg("--jwks")
        .arg(jwks)
        .args(["--video", video, token])
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}; run scripts/install-test-clients.sh (make test does)",
                python.display()
            )
        })
}

#[test]
fn pyjwt_verifies_a_reel_token_with_the_jwks_and_refuses_the_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut keys = SigningKeySet::generate();
    let now = unix_now();
    let old = keys.mint("video-1", 600, now, &[]).expect("minted");
    keys.rotate();
    let token = keys
        .mint("video-1", 600, now, &["school.example".into()])
        .expect("minted");
    let jwks = dir.path().join("reel-jwks.json");
    std::fs::write(&jwks, keys.public().to_json()).expect("jwks written");

    for valid in [&token, &old] {
        let output = verify_with_pyjwt(&jwks, "video-1", valid);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let claims: serde_json::Value = serde_json::from_str(&stdout).expect("claims json");
        assert_eq!(claims["sub"], "video-1");
        assert_eq!(claims["aud"], "reel-playback/1");
    }

    let expired = keys.mint("video-1", 1, now - 100, &[]).expect("minted");
    // The signature's first character carries six signature bits.
    let at = token.rfind('.').expect("three parts") + 1;
    let mut tampered = token.clone();
    let first = if token[at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, first);
    let stranger = SigningKeySet::generate()
        .mint("video-1", 600, now, &[])
        .expect("minted");
    for (name, video, bad, reason) in [
        ("other video", "video-2", &token, "another video"),
        ("expired", "video-1", &expired, "ExpiredSignatureError"),
        ("tampered", "video-1", &tampered, "InvalidSignatureError"),
        ("unknown kid", "video-1", &stranger, "unknown kid"),
    ] {
        let output = verify_with_pyjwt(&jwks, video, bad);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
        assert!(stdout.contains(reason), "{name}: {stdout}");
    }
}
