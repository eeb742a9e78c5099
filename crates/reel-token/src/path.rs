//! The signed path scheme `/v/{video}/t/{token}/{file...}`.

/// A request path split into its parts by [`split_signed_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPath<'a> {
    pub video: &'a str,
    pub token: &'a str,
    /// The media file below the video, e.g. `720p/seg-3.m4s` (never empty).
    pub file: &'a str,
}

impl SignedPath<'_> {
    /// The same object without the token, `/v/{video}/{file}`: the cache key
    /// every viewer's token maps to, and the origin's plain media path.
    pub fn unsigned(&self) -> String {
        format!("/v/{}/{}", self.video, self.file)
    }
}

/// `/v/{video}/t/{token}/{file}`.
pub fn signed_path(video: &str, token: &str, file: &str) -> String {
    format!("/v/{video}/t/{token}/{}", file.trim_start_matches('/'))
}

/// Splits a request path (without its query) of the form
/// `/v/{video}/t/{token}/{file...}`; `None` for any other path.
pub fn split_signed_path(path: &str) -> Option<SignedPath<'_>> {
    let rest = path.strip_prefix("/v/")?;
    let (video, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("t/")?;
    let (token, file) = rest.split_once('/')?;
    if video.is_empty() || token.is_empty() || file.is_empty() {
        return None;
    }
    Some(SignedPath { video, token, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_joins() {
        let path = signed_path("vid", "a.b.c", "720p/seg-1.m4s");
        assert_eq!(path, "/v/vid/t/a.b.c/720p/seg-1.m4s");
        let split = split_signed_path(&path).expect("signed");
        assert_eq!(split.video, "vid");
        assert_eq!(split.token, "a.b.c");
        assert_eq!(split.file, "720p/seg-1.m4s");
        assert_eq!(split.unsigned(), "/v/vid/720p/seg-1.m4s");
        assert_eq!(signed_path("v", "t", "/x.m3u8"), "/v/v/t/t/x.m3u8");
    }

    #[test]
    fn other_paths_are_not_signed() {
        for path in [
            "/v/vid/720p/seg-1.m4s",
            "/v/vid/t/tok",
            "/v/vid/t/tok/",
            "/v//t/tok/x.m3u8",
            "/v/vid/t//x.m3u8",
            "/x/vid/t/tok/x.m3u8",
            "v/vid/t/tok/x.m3u8",
            "",
        ] {
            assert_eq!(split_signed_path(path), None, "{path}");
        }
    }
}
