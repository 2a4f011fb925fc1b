//! Field checks shared by the world's inputs, and request fingerprints.

use crate::error::{WorldError, WorldResult};

/// Checks that an id is positive.
pub fn positive_id(field: &str, id: i64) -> WorldResult<()> {
    if id <= 0 {
        return Err(invalid(format!("{field} must be a positive id, got {id}")));
    }
    Ok(())
}

/// Trims a text field and checks its length (in characters) and that it
/// holds no control characters other than newlines and tabs.
pub(crate) fn text_field(field: &str, value: String, min_chars: usize, max_chars: usize) -> WorldResult<String> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars < min_chars {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if chars > max_chars {
        return Err(invalid(format!(
            "{field} must be at most {max_chars} characters, got {chars}"
        )));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(format!("{field} must not contain control characters")));
    }
    Ok(trimmed.to_owned())
}

/// Checks a one-word label (biome, event kind): 1 to 32 lowercase ASCII
/// letters, digits or underscores, starting with a letter.
pub(crate) fn word_field(field: &str, value: &str) -> WorldResult<String> {
    let value = value.trim();
    let valid = value.len() <= 32
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(invalid(format!(
            "{field} must be 1 to 32 lowercase letters, digits or underscores, starting with a letter, got {value:?}"
        )));
    }
    Ok(value.to_owned())
}

pub(crate) fn invalid(message: String) -> WorldError {
    WorldError::Invalid(message)
}

/// A stable fingerprint of a request's fields, to tell an idempotent retry
/// from a different request that reuses its key (FNV-1a).
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
}
