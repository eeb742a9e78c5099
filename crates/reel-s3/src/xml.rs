//! The XML the endpoint reads (the CompleteMultipartUpload part list) and
//! the escaping it writes with.

use crate::error::{S3Error, S3ErrorKind};

/// One `<Part>` of a CompleteMultipartUpload body, as the client sent it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestedPart {
    pub(crate) part_number: u32,
    /// The ETag without quotes.
    pub(crate) etag: String,
}

/// Escapes text for XML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…`,
/// keeping the parts in document order (checking that order is the caller's job).
pub(crate) fn parse_complete_request(body: &[u8]) -> Result<Vec<RequestedPart>, S3Error> {
    let malformed = |what: &str| {
        S3Error::new(
            S3ErrorKind::MalformedXml,
            format!("the CompleteMultipartUpload body is not valid: {what}"),
        )
    };
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let document =
        roxmltree::Document::parse(text).map_err(|error| malformed(&error.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "CompleteMultipartUpload" {
        return Err(malformed("the root element is not CompleteMultipartUpload"));
    }
    let mut parts = Vec::new();
    for part_node in root.children().filter(|node| node.is_element()) {
        if part_node.tag_name().name() != "Part" {
            continue;
        }
        let child_text = |name: &str| {
            part_node
                .children()
                .find(|child| child.is_element() && child.tag_name().name() == name)
                .and_then(|child| child.text())
                .map(str::trim)
        };
        let part_number = child_text("PartNumber")
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or_else(|| malformed("a Part has no valid PartNumber"))?;
        let etag = child_text("ETag").ok_or_else(|| malformed("a Part has no ETag"))?;
        parts.push(RequestedPart {
            part_number,
            etag: etag.trim_matches('"').to_ascii_lowercase(),
        });
    }
    if parts.is_empty() {
        return Err(malformed("it lists no parts"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<Vec<(u32, &str)>, S3ErrorKind>) {
        let actual = parse_complete_request(body.as_bytes())
            .map(|parts| {
                parts
                    .into_iter()
                    .map(|part| (part.part_number, part.etag))
                    .collect::<Vec<_>>()
            })
            .map_err(|error| error.kind);
        let expected = expected.map(|parts| {
            parts
                .into_iter()
                .map(|(number, etag)| (number, etag.to_string()))
                .collect::<Vec<_>>()
        });
        assert_eq!(actual, expected);
    }

    #[test]
    fn parses_parts_with_namespace_and_quoted_etags() {
        check(
            r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"AB12"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>cd34</ETag></Part></CompleteMultipartUpload>"#,
            Ok(vec![(1, "ab12"), (2, "cd34")]),
        );
    }

    #[test]
    fn parses_entity_escaped_quotes() {
        check(
            "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>&quot;ab&quot;</ETag></Part></CompleteMultipartUpload>",
            Ok(vec![(3, "ab")]),
        );
    }

    #[test]
    fn rejects_empty_and_malformed_bodies() {
        check("<CompleteMultipartUpload/>", Err(S3ErrorKind::MalformedXml));
        check("<Other/>", Err(S3ErrorKind::MalformedXml));
        check("not xml", Err(S3ErrorKind::MalformedXml));
        check(
            "<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
            Err(S3ErrorKind::MalformedXml),
        );
        check(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
            Err(S3ErrorKind::MalformedXml),
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
