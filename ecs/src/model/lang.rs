//! Language files: `Server/Languages/<locale>/*.lang`, one `key = text` per line, as Hytale
//! writes them. Blank lines and lines starting with `#` are skipped. Text clues name a key;
//! players read the text of the server's language, and the key lets a client show its own.
//!
//! ```text
//! # Languages/en-US/clues.lang
//! clue.lighthouse = Where the light once turned, the sea remembers gold.
//! ```

use std::collections::BTreeMap;

use veltrix_sdk::assets::{AssetError, AssetSource};

/// The folder of language files under `Server/`.
pub const LANGUAGES: &str = "Languages";

/// The language every Text clue must have a line in; other languages fall back to it.
pub const DEFAULT_LOCALE: &str = "en-US";

/// Every language's texts by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages(pub BTreeMap<String, BTreeMap<String, String>>);

impl Languages {
    /// Parses language files; `kind` of each source is `Languages/<locale>`. Every malformed
    /// line and every key given twice in one language is an error with its line.
    pub fn parse(sources: &[AssetSource]) -> Result<Languages, Vec<AssetError>> {
        let mut languages: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut first_seen: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
        let mut errors = Vec::new();
        for source in sources {
            let locale = source.kind.strip_prefix(LANGUAGES).unwrap_or(&source.kind).trim_start_matches('/');
            let texts = languages.entry(locale.to_string()).or_default();
            for (n, line) in source.text.lines().enumerate() {
                let error = |message: String| AssetError {
                    path: source.path.clone(),
                    line: n + 1,
                    column: 1,
                    json_path: String::new(),
                    message,
                };
                let trimmed = line.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let Some((key, text)) = trimmed.split_once('=') else {
                    errors.push(error(format!("expected `key = text`, found {trimmed:?}")));
                    continue;
                };
                let key = key.trim();
                if key.is_empty() || key.contains(char::is_whitespace) {
                    errors.push(error(format!("{key:?} is not a key: use letters, digits, `.` and `_`")));
                    continue;
                }
                let place = (source.path.display().to_string(), n + 1);
                if let Some((file, line)) = first_seen.get(&(locale.to_string(), key.to_string())) {
                    errors.push(error(format!("the key {key} is already given at {file}:{line}")));
                    continue;
                }
                first_seen.insert((locale.to_string(), key.to_string()), place);
                texts.insert(key.to_string(), text.trim().to_string());
            }
        }
        if errors.is_empty() { Ok(Languages(languages)) } else { Err(errors) }
    }

    /// The text of `key` in `locale`, else in [`DEFAULT_LOCALE`].
    pub fn text(&self, locale: &str, key: &str) -> Option<&str> {
        let in_locale = |l: &str| self.0.get(l).and_then(|texts| texts.get(key)).map(String::as_str);
        in_locale(locale).or_else(|| in_locale(DEFAULT_LOCALE))
    }

    /// The keys of the default language (for "did you mean").
    pub fn default_keys(&self) -> Vec<&str> {
        self.0.get(DEFAULT_LOCALE).map(|t| t.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(locale: &str, text: &str) -> AssetSource {
        AssetSource::from_text(
            format!("{LANGUAGES}/{locale}"),
            "clues",
            format!("Server/Languages/{locale}/clues.lang"),
            text,
        )
    }

    #[test]
    fn lines_comments_and_fallback() {
        let languages = Languages::parse(&[
            source("en-US", "# riddles\n\nclue.well = Deep and round.\nclue.tree=Tall = old\n"),
            source("fr-FR", "clue.well = Profond et rond.\n"),
        ])
        .unwrap();
        assert_eq!(languages.text("fr-FR", "clue.well"), Some("Profond et rond."));
        assert_eq!(languages.text("fr-FR", "clue.tree"), Some("Tall = old"), "falls back to en-US");
        assert_eq!(languages.text("en-US", "clue.none"), None);
    }

    #[test]
    fn malformed_lines_and_repeated_keys_are_located() {
        let errors = Languages::parse(&[source("en-US", "a = 1\njust words\na = 2\n")]).unwrap_err();
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "Server/Languages/en-US/clues.lang:2:1: expected `key = text`, found \"just words\"",
                "Server/Languages/en-US/clues.lang:3:1: the key a is already given at Server/Languages/en-US/clues.lang:1",
            ]
        );
    }
}
