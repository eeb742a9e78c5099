//! Finding 11: URLs are redacted by parsing them, so a password with `@` in
//! it and secret query values never reach `reel config check` or an error.

use std::process::Command;

use crate::common::REEL;

const SECRETS: [&str; 3] = ["p@ssw0rd", "ssw0rd", "hunter2"];

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(REEL)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("REEL_LOG", "debug,sqlx=warn")
        .env_remove("REEL_DATABASE")
        .output()
        .expect("run reel");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn config_check_redacts_passwords_with_at_signs_and_secret_query_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, text) = run(
        dir.path(),
        &[
            "config",
            "check",
            "--database",
            "postgres://reel:p@ssw0rd@db.internal:5432/reel?password=hunter2&sslmode=require",
            "--storage",
            "s3://bucket",
        ],
    );
    assert!(ok, "{text}");
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
    assert!(
        text.contains("postgres://reel:***@db.internal:5432/reel?password=***&sslmode=require"),
        "{text}"
    );
}

#[test]
fn database_errors_never_print_the_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    // An unsupported scheme fails at once; the unreachable PostgreSQL after
    // the pool's acquire timeout.
    for (command, database) in [
        (
            &["jobs", "list"][..],
            "mysql://reel:p@ssw0rd@127.0.0.1:1/reel?password=hunter2",
        ),
        (
            &["keys", "list"][..],
            "mysql://reel:p@ssw0rd@127.0.0.1:1/reel?password=hunter2",
        ),
        (
            &["jobs", "list"][..],
            "postgres://reel:p@ssw0rd@127.0.0.1:1/reel?password=hunter2",
        ),
    ] {
        let mut args = command.to_vec();
        args.extend(["--database", database]);
        let (ok, text) = run(dir.path(), &args);
        assert!(!ok, "{args:?} succeeded: {text}");
        assert!(text.contains("opening database"), "{text}");
        for secret in SECRETS {
            assert!(!text.contains(secret), "{args:?} printed {secret}: {text}");
        }
    }
}
