//! Keeping the server's filesystem paths out of messages users read.

/// `text` with every absolute filesystem path replaced by `<file>`: a path
/// starts with `/` at the start of a word (after a space, a quote, a bracket
/// or `=`) and runs to the next space, quote, bracket, comma or `: `. URLs
/// (`http://…`) and fractions (`1/2`) are left alone.
pub fn redact_paths(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut idx = 0;
    while idx < chars.len() {
        let starts_word = idx == 0
            || matches!(
                chars[idx - 1],
                ' ' | '\t' | '\n' | '\'' | '"' | '(' | '[' | '{' | '<' | '='
            );
        let next_is_name = chars
            .get(idx + 1)
            .is_some_and(|next| next.is_alphanumeric() || matches!(next, '.' | '_' | '-'));
        if chars[idx] == '/' && starts_word && next_is_name {
            let mut end = idx + 1;
            while end < chars.len() {
                let ends = match chars[end] {
                    ' ' | '\t' | '\n' | '\'' | '"' | ')' | ']' | '}' | '>' | ',' | ';' => true,
                    ':' => chars.get(end + 1).is_none_or(|next| next.is_whitespace()),
                    _ => false,
                };
                if ends {
                    break;
                }
                end += 1;
            }
            out.push_str("<file>");
            idx = end;
        } else {
            out.push(chars[idx]);
            idx += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_server_paths_but_not_urls_or_fractions() {
        assert_eq!(
            redact_paths(
                "/var/lib/reel/tmp/task-1/input: Invalid data found when processing input"
            ),
            "<file>: Invalid data found when processing input"
        );
        assert_eq!(
            redact_paths(
                "reading \"/data/x/y.mp4\" failed; see 'http://127.0.0.1:9/a.ts' at 1/2 speed"
            ),
            "reading \"<file>\" failed; see 'http://127.0.0.1:9/a.ts' at 1/2 speed"
        );
        assert_eq!(redact_paths("(/a/b, /c)"), "(<file>, <file>)");
        assert_eq!(
            redact_paths("no paths here / at all"),
            "no paths here / at all"
        );
    }
}
