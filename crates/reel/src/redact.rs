//! Secrets kept out of what `reel` prints: URLs are redacted by parsing
//! them, so a password with `@` or `:` in it, or a token in the query, never
//! reaches `reel config check`, an error message or a log line.

/// Query parameters whose values are secrets: any name containing one of
/// these (case-insensitive), e.g. `password`, `sslpassword`, `token`,
/// `X-Amz-Signature`, `api_key`.
const SECRET_PARAMS: [&str; 9] = [
    "pass",
    "pwd",
    "token",
    "secret",
    "signature",
    "sig",
    "key",
    "credential",
    "auth",
];

/// `url` with its password replaced by `***` and the values of secret query
/// parameters by `***`; a URL that does not parse but may hold credentials
/// (it has `@` or `?`) is reduced to its scheme. URLs without secrets are
/// returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        if url.contains(['@', '?']) {
            let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
            return format!("{scheme}://***");
        }
        return url.to_string();
    };
    let mut changed = false;
    if parsed.password().is_some() {
        // Cannot fail: the URL already has credentials, so it has a host.
        let _ = parsed.set_password(Some("***"));
        changed = true;
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                if SECRET_PARAMS.iter().any(|secret| lower.contains(secret)) {
                    (name.into_owned(), "***".to_string())
                } else {
                    (name.into_owned(), value.into_owned())
                }
            })
            .collect();
        if pairs.iter().any(|(_, value)| value == "***") {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
            changed = true;
        }
    }
    if !changed {
        return url.to_string();
    }
    // `***` is kept readable rather than percent-encoded.
    parsed
        .as_str()
        .replace("%2A%2A%2A", "***")
        .replace("%2a%2a%2a", "***")
}

/// `text` (an error message that may quote `url`) with `url` replaced by its
/// redacted form, and its password and secret query values, raw or
/// percent-decoded, replaced by `***` wherever they appear.
pub fn redact_url_in(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password() {
            secrets.push(password.to_string());
            if let Ok(decoded) = percent_decode(password) {
                secrets.push(decoded);
            }
        }
        for (name, value) in parsed.query_pairs() {
            let lower = name.to_ascii_lowercase();
            if SECRET_PARAMS.iter().any(|secret| lower.contains(secret)) {
                secrets.push(value.into_owned());
            }
        }
    } else if let Some((_, rest)) = url.split_once("://") {
        // Unparsable: everything before the last `@` may be credentials.
        if let Some((credentials, _)) = rest.rsplit_once('@') {
            secrets.push(credentials.to_string());
        }
    }
    secrets.retain(|secret| secret.len() >= 3 && secret != "***");
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    for secret in secrets {
        out = out.replace(&secret, "***");
    }
    out
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let hex = bytes
            .get(idx + 1..idx + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[idx], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                idx += 3;
            }
            (byte, _) => {
                out.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_at_signs_and_secret_query_values_are_redacted() {
        assert_eq!(
            redact_url("postgres://reel:p@ssw0rd@host/reel"),
            "postgres://reel:***@host/reel"
        );
        assert_eq!(
            redact_url("postgres://reel@host/reel?password=hunter2&sslmode=require"),
            "postgres://reel@host/reel?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("https://cdn/x?X-Amz-Signature=abc&token=t0k&a=1"),
            "https://cdn/x?X-Amz-Signature=***&token=***&a=1"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(redact_url("not a url @ all"), "://***");
    }

    #[test]
    fn secrets_are_removed_from_error_text() {
        let url = "postgres://reel:p@ssw0rd@host/reel?password=hunter2";
        let text = format!("connecting to {url} failed: password authentication failed (p@ssw0rd)");
        let redacted = redact_url_in(&text, url);
        assert!(!redacted.contains("ssw0rd"), "{redacted}");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(
            redacted.contains("postgres://reel:***@host/reel"),
            "{redacted}"
        );
    }
}
