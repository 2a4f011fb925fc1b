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

/// Trims a text field and checks its length (in characters) and that it
/// holds no control characters other than newlines and tabs.
pub fn text_field(field: &str, value: String, min_chars: usize, max_chars: usize) -> Result<String, Invalid> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars < min_chars {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    if chars > max_chars {
        return Err(Invalid(format!(
            "{field} must be at most {max_chars} characters, got {chars}"
        )));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid(format!("{field} must not contain control characters")));
    }
    Ok(trimmed.to_owned())
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
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for s in strings {
        feed(&(s.len() as u64).to_le_bytes());
        feed(s.as_bytes());
    }
    feed(&(ints.len() as u64).to_le_bytes());
    for i in ints {
        feed(&i.to_le_bytes());
    }
    format!("{hash:016x}")
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
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text_field("name", "  Hilda ".into(), 1, 10).unwrap(), "Hilda");
        assert!(text_field("name", " ".into(), 1, 10).unwrap_err().0.starts_with("name"));
        assert!(text_field("name", "x".repeat(11), 1, 10).is_err());
        assert!(text_field("name", "a\u{0}b".into(), 1, 10).is_err());
        assert!(unit_field("honesty", f32::NAN).is_err());
        assert!(idempotency_key(Some("")).is_err());
        assert!(positive_id("id", 0).is_err());
    }
}
