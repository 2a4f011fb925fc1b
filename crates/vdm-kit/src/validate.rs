//! Field checks every service applies to its inputs, each naming the field
//! at fault, and request fingerprints for idempotency keys. Services turn an
//! [`Invalid`] into their own "invalid argument" error with `?`.

/// A field that fails its check; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Checks that an id is positive.
pub fn positive_id(field: &str, id: i64) -> Result<(), Invalid> {
    if id <= 0 {
        return Err(Invalid(format!("{field} must be a positive id, got {id}")));
    }
    Ok(())
}

/// An optional id filter: absent is no filter, present must be positive.
pub fn positive_filter(field: &str, id: Option<i64>) -> Result<Option<i64>, Invalid> {
    if let Some(id) = id {
        positive_id(field, id)?;
    }
    Ok(id)
}

/// Whether a user-visible text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, titles, short labels: no line breaks or tabs.
    One,
    /// Descriptions, memories, event and rumor texts: `\n` and `\t` allowed.
    Many,
}

/// The shape of a user-visible text field: its length bounds, in
/// characters after trimming, and whether it may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    /// The fewest characters; 0 makes the field optional.
    pub min_chars: usize,
    /// The most characters.
    pub max_chars: usize,
    /// Whether line breaks and tabs are allowed.
    pub lines: Lines,
}

impl TextRule {
    /// A required one-line text (a name, a title) of at most `max_chars`.
    pub const fn line(max_chars: usize) -> TextRule {
        TextRule {
            min_chars: 1,
            max_chars,
            lines: Lines::One,
        }
    }

    /// A required multi-line text (a description, a memory, an event or
    /// rumor text) of at most `max_chars`.
    pub const fn paragraph(max_chars: usize) -> TextRule {
        TextRule {
            min_chars: 1,
            max_chars,
            lines: Lines::Many,
        }
    }

    /// The same rule for a field that may be left empty (still not blank:
    /// invisible characters alone are refused).
    pub const fn optional(self) -> TextRule {
        TextRule { min_chars: 0, ..self }
    }
}

/// Trims a user-visible text field, checks it against [`check_text`] and
/// checks its length in characters.
pub fn text_field(field: &str, value: String, rule: TextRule) -> Result<String, Invalid> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars == 0 && rule.min_chars > 0 {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    check_text(field, trimmed, rule.lines)?;
    if chars < rule.min_chars {
        return Err(Invalid(format!(
            "{field} must be at least {} characters, got {chars}",
            rule.min_chars
        )));
    }
    if chars > rule.max_chars {
        return Err(Invalid(format!(
            "{field} must be at most {} characters, got {chars}",
            rule.max_chars
        )));
    }
    Ok(trimmed.to_owned())
}

/// The policy for text that players see (docs/SECURITY.md, "Text players
/// see"), the one check every service applies to such fields. Refused,
/// with a message naming `field`:
/// - control characters (Unicode `Cc`), except `\n` and `\t` in
///   [`Lines::Many`] text;
/// - bidirectional overrides, embeddings, isolates and marks (U+202A to
///   U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C): they make text
///   render in an order other than the one stored ("Trojan Source"
///   spoofing of names and quest texts);
/// - a non-empty text made only of whitespace and zero-width characters
///   (U+200B to U+200D, U+2060, U+FEFF): it looks empty, or like nothing,
///   in every client while passing an emptiness check.
///
/// Zero-width characters inside visible text stay allowed: joiners are part
/// of emoji sequences and of Persian and Indic spelling.
pub fn check_text(field: &str, text: &str, lines: Lines) -> Result<(), Invalid> {
    for c in text.chars() {
        if is_bidi_control(c) {
            return Err(Invalid(format!(
                "{field} must not contain bidirectional control characters (found U+{:04X})",
                u32::from(c)
            )));
        }
        let allowed_space = lines == Lines::Many && (c == '\n' || c == '\t');
        if c.is_control() && !allowed_space {
            let what = match lines {
                Lines::One => "control characters, line breaks or tabs",
                Lines::Many => "control characters other than line breaks and tabs",
            };
            return Err(Invalid(format!(
                "{field} must not contain {what} (found U+{:04X})",
                u32::from(c)
            )));
        }
    }
    if !text.is_empty() && text.chars().all(|c| c.is_whitespace() || is_zero_width(c)) {
        return Err(Invalid(format!(
            "{field} must not be blank (only whitespace or invisible characters)"
        )));
    }
    Ok(())
}

/// Bidirectional formatting characters: embeddings and overrides (U+202A to
/// U+202E), isolates (U+2066 to U+2069) and the implicit marks (LRM, RLM,
/// ALM).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that take no space: zero-width space, non-joiner and joiner,
/// word joiner, and the byte order mark (zero-width no-break space).
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Checks a one-word label (biome, event kind, memory kind): 1 to 32
/// lowercase ASCII letters, digits or underscores, starting with a letter.
pub fn word_field(field: &str, value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    let valid = value.len() <= 32
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Invalid(format!(
            "{field} must be 1 to 32 lowercase letters, digits or underscores, starting with a letter, got {value:?}"
        )));
    }
    Ok(value.to_owned())
}

/// Checks a 0..=1 score (NaN and infinities fail too).
pub fn unit_field(field: &str, value: f32) -> Result<f32, Invalid> {
    if !(0.0..=1.0).contains(&value) {
        return Err(Invalid(format!("{field} must be between 0 and 1, got {value}")));
    }
    Ok(value)
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn idempotency_key(key: Option<&str>) -> Result<(), Invalid> {
    if let Some(key) = key
        && (key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Invalid(
            "idempotency key must be 1 to 128 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

/// A stable fingerprint of a request's fields, to tell an idempotent retry
/// from a different request that reuses its key (FNV-1a, length-prefixed so
/// `["ab", "c"]` and `["a", "bc"]` differ).
pub fn fingerprint(strings: &[&str], ints: &[i64]) -> String {
    let mut hash = crate::hash::Fnv64::default();
    for s in strings {
        hash.str(s);
    }
    hash.int(ints.len() as i64);
    for i in ints {
        hash.int(*i);
    }
    hash.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_labels() {
        assert_eq!(word_field("biome", " forest ").unwrap(), "forest");
        assert!(word_field("biome", "").is_err());
        assert!(word_field("biome", "Forest").is_err());
        assert!(word_field("biome", "9lives").is_err());
        assert!(word_field("biome", &"a".repeat(33)).is_err());
    }

    #[test]
    fn fingerprints_tell_fields_apart() {
        assert_ne!(fingerprint(&["ab", "c"], &[]), fingerprint(&["a", "bc"], &[]));
        assert_eq!(fingerprint(&["a"], &[1, 2]), fingerprint(&["a"], &[1, 2]));
        assert_ne!(fingerprint(&["a"], &[1, 2]), fingerprint(&["a"], &[2, 1]));
        // Stored with idempotency keys: the value must never change.
        assert_eq!(fingerprint(&["a"], &[1, 2]), "94546a359cc7109e");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        let name = TextRule::line(10);
        assert_eq!(text_field("name", "  Hilda ".into(), name).unwrap(), "Hilda");
        assert!(text_field("name", " ".into(), name).unwrap_err().0.starts_with("name"));
        assert!(text_field("name", "x".repeat(11), name).is_err());
        assert!(text_field("name", "a\u{0}b".into(), name).is_err());
        assert_eq!(
            text_field("about", "  ".into(), TextRule::paragraph(10).optional()).unwrap(),
            ""
        );
        assert!(unit_field("honesty", f32::NAN).is_err());
        assert!(idempotency_key(Some("")).is_err());
        assert!(positive_id("id", 0).is_err());
    }

    #[test]
    fn the_text_policy_refuses_controls_bidi_and_invisible_text() {
        let line = TextRule::line(100);
        let paragraph = TextRule::paragraph(100);
        // Line breaks and tabs: only in multi-line text.
        assert_eq!(text_field("text", "a\nb\tc".into(), paragraph).unwrap(), "a\nb\tc");
        let err = text_field("title", "a\nb".into(), line).unwrap_err().0;
        assert!(err.starts_with("title must not contain"), "{err}");
        assert!(text_field("text", "a\rb".into(), paragraph).is_err());
        assert!(text_field("text", "a\u{7f}b".into(), paragraph).is_err());
        assert!(text_field("text", "a\u{85}b".into(), paragraph).is_err());
        // Every bidi control, in either kind of text.
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let spoof = format!("Hilda{c}adlih");
            let err = text_field("name", spoof.clone(), line).unwrap_err().0;
            assert!(err.starts_with("name must not contain bidirectional"), "{err}");
            assert!(text_field("text", spoof, paragraph).is_err());
        }
        // Invisible-only text is blank, also where the field is optional.
        for blank in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            " \u{2060} ",
            "\u{FEFF}",
            "\u{200B}\n\u{200B}",
        ] {
            let err = text_field("text", blank.into(), paragraph).unwrap_err().0;
            assert!(err.starts_with("text must not be blank"), "{blank:?}: {err}");
            assert!(text_field("about", blank.into(), paragraph.optional()).is_err());
        }
        // Zero-width characters inside visible text stay (emoji, scripts).
        assert!(text_field("name", "👨\u{200D}👩\u{200D}👧".into(), line).is_ok());
        assert!(text_field("name", "می\u{200C}خواهم".into(), line).is_ok());
        assert!(text_field("name", "Ünïcødé ☃ 名前".into(), line).is_ok());
    }
}
