//! A player's disposition with an NPC: a score from hostile to devoted.

use super::text::{fingerprint, invalid};
use crate::error::NpcResult;

/// The lowest score (hostile).
pub const MIN_SCORE: i32 = -100;
/// The highest score (devoted).
pub const MAX_SCORE: i32 = 100;
/// The largest change one adjustment may ask for.
pub const MAX_DELTA: i32 = 200;

/// A player's standing with an NPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disposition {
    /// The NPC.
    pub npc_id: i64,
    /// The player.
    pub player_id: i64,
    /// [`MIN_SCORE`]..=[`MAX_SCORE`]; 0 is neutral.
    pub score: i32,
    /// When it last changed (Unix ms); 0 when never adjusted.
    pub updated_at_ms: i64,
}

/// The score after adding `delta`, clamped to the range.
pub fn adjusted_score(current: i32, delta: i32) -> NpcResult<i32> {
    if !(-MAX_DELTA..=MAX_DELTA).contains(&delta) {
        return Err(invalid(format!(
            "delta must be between -{MAX_DELTA} and {MAX_DELTA}, got {delta}"
        )));
    }
    Ok(current.saturating_add(delta).clamp(MIN_SCORE, MAX_SCORE))
}

/// The fingerprint of an adjustment, stored with its idempotency key so a
/// replay can be told from another request reusing the key.
pub fn adjustment_fingerprint(npc_id: i64, player_id: i64, delta: i32) -> String {
    fingerprint(&["adjust_disposition"], &[npc_id, player_id, i64::from(delta)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps() {
        assert_eq!(adjusted_score(95, 10).unwrap(), 100);
        assert_eq!(adjusted_score(-95, -10).unwrap(), -100);
        assert_eq!(adjusted_score(5, -10).unwrap(), -5);
        assert!(adjusted_score(0, 201).is_err());
    }

    #[test]
    fn fingerprints_tell_adjustments_apart() {
        let a = adjustment_fingerprint(1, 2, 10);
        assert_eq!(a, adjustment_fingerprint(1, 2, 10));
        assert_ne!(a, adjustment_fingerprint(1, 2, 11));
        assert_ne!(a, adjustment_fingerprint(2, 2, 10));
        assert_ne!(a, adjustment_fingerprint(1, 3, 10));
    }
}
