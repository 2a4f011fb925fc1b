//! Field checks shared by the NPC service's inputs, and request fingerprints.

use crate::error::{NpcError, NpcResult};

/// Checks that an id is positive.
pub fn positive_id(field: &str, id: i64) -> NpcResult<()> {
    if id <= 0 {
        return Err(invalid(format!("{field} must be a positive id, got {id}")));
    }
    Ok(())
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn check_idempotency_key(key: Option<&str>) -> NpcResult<()> {
    if let Some(key) = key
        && (key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(invalid(
            "idempotency key must be 1 to 128 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

/// Trims a text field and checks its length (in characters) and that it
/// holds no control characters other than newlines and tabs.
pub(crate) fn text_field(field: &str, value: String, min_chars: usize, max_chars: usize) -> NpcResult<String> {
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

/// Checks a one-word label: 1 to 32 lowercase ASCII letters, digits or
/// underscores, starting with a letter.
pub(crate) fn word_field(field: &str, value: &str) -> NpcResult<String> {
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

/// Checks a 0..=1 score (NaN and infinities fail too).
pub(crate) fn unit_field(field: &str, value: f32) -> NpcResult<f32> {
    if !(0.0..=1.0).contains(&value) {
        return Err(invalid(format!("{field} must be between 0 and 1, got {value}")));
    }
    Ok(value)
}

pub(crate) fn invalid(message: String) -> NpcError {
    NpcError::Invalid(message)
}

/// A stable fingerprint of a request's fields, to tell an idempotent retry
/// from a different request that reuses its key (FNV-1a).
pub(crate) fn fingerprint(strings: &[&str], ints: &[i64]) -> String {
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
    fn unit_scores_reject_nan_and_out_of_range() {
        assert_eq!(unit_field("x", 0.25).unwrap(), 0.25);
        assert!(unit_field("x", f32::NAN).is_err());
        assert!(unit_field("x", f32::INFINITY).is_err());
        assert!(
            unit_field("x", -0.01)
                .unwrap_err()
                .to_string()
                .contains("x must be between 0 and 1")
        );
        assert!(check_idempotency_key(Some("")).is_err());
        assert!(check_idempotency_key(Some("a b")).is_err());
        assert!(check_idempotency_key(Some("demo-npc-1")).is_ok());
    }
}
