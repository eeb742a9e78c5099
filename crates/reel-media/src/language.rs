//! Language tags of source streams as manifests want them: containers carry
//! ISO 639-2 codes (`eng`, `fre`/`fra`), HLS and DASH want BCP 47, which
//! uses the two-letter ISO 639-1 code where one exists (`en`, `fr`).

/// (ISO 639-2/B, ISO 639-2/T, ISO 639-1, the name players show).
const LANGUAGES: &[(&str, &str, &str, &str)] = &[
    ("ara", "ara", "ar", "العربية"),
    ("chi", "zho", "zh", "中文"),
    ("cze", "ces", "cs", "Čeština"),
    ("dan", "dan", "da", "Dansk"),
    ("dut", "nld", "nl", "Nederlands"),
    ("eng", "eng", "en", "English"),
    ("fin", "fin", "fi", "Suomi"),
    ("fre", "fra", "fr", "Français"),
    ("ger", "deu", "de", "Deutsch"),
    ("gre", "ell", "el", "Ελληνικά"),
    ("heb", "heb", "he", "עברית"),
    ("hin", "hin", "hi", "हिन्दी"),
    ("hun", "hun", "hu", "Magyar"),
    ("ind", "ind", "id", "Bahasa Indonesia"),
    ("ita", "ita", "it", "Italiano"),
    ("jpn", "jpn", "ja", "日本語"),
    ("kor", "kor", "ko", "한국어"),
    ("nor", "nor", "no", "Norsk"),
    ("pol", "pol", "pl", "Polski"),
    ("por", "por", "pt", "Português"),
    ("rum", "ron", "ro", "Română"),
    ("rus", "rus", "ru", "Русский"),
    ("spa", "spa", "es", "Español"),
    ("swe", "swe", "sv", "Svenska"),
    ("tha", "tha", "th", "ไทย"),
    ("tur", "tur", "tr", "Türkçe"),
    ("ukr", "ukr", "uk", "Українська"),
    ("vie", "vie", "vi", "Tiếng Việt"),
];

fn entry(tag: &str) -> Option<&'static (&'static str, &'static str, &'static str, &'static str)> {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(bibliographic, terminology, short, _)| {
            primary == *bibliographic || primary == *terminology || primary == *short
        })
}

/// The BCP 47 form of a container's language tag: the two-letter code for
/// the languages of [`LANGUAGES`] (`eng` → `en`, `fre` → `fr`), any region
/// kept (`eng-US` → `en-US`); other tags as they are.
pub fn bcp47(tag: &str) -> String {
    match entry(tag) {
        Some((_, _, short, _)) => match tag.split_once(['-', '_']) {
            Some((_, region)) => format!("{short}-{region}"),
            None => short.to_string(),
        },
        None => tag.to_string(),
    }
}

/// The name players show for audio track `track` (from 1): the stream's
/// title, else its language's own name, else `Audio` (`Audio 2`, … after
/// the first).
pub fn track_name(title: Option<&str>, language: Option<&str>, track: u32) -> String {
    if let Some(title) = title.map(str::trim).filter(|title| !title.is_empty()) {
        return title
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
    }
    if let Some((_, _, _, name)) = language.and_then(entry) {
        return name.to_string();
    }
    if let Some(language) = language {
        return language.to_string();
    }
    if track <= 1 {
        "Audio".to_string()
    } else {
        format!("Audio {track}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_tags_become_bcp47() {
        assert_eq!(bcp47("eng"), "en");
        assert_eq!(bcp47("fre"), "fr");
        assert_eq!(bcp47("fra"), "fr");
        assert_eq!(bcp47("ger"), "de");
        assert_eq!(bcp47("en"), "en");
        assert_eq!(bcp47("eng-US"), "en-US");
        assert_eq!(bcp47("tlh"), "tlh");
    }

    #[test]
    fn names_come_from_the_title_then_the_language() {
        assert_eq!(track_name(Some("Commentary"), Some("eng"), 2), "Commentary");
        assert_eq!(track_name(None, Some("fre"), 2), "Français");
        assert_eq!(track_name(Some("  "), Some("tlh"), 1), "tlh");
        assert_eq!(track_name(None, None, 1), "Audio");
        assert_eq!(track_name(None, None, 3), "Audio 3");
    }
}
