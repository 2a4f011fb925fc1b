//! Accounts and profiles: device and session ids, display names, the level
//! curve, and session rotation outcomes.

use serde::{Deserialize, Serialize};
use vdm_kit::validate::Invalid;

/// The fewest characters of a display name (after trimming).
pub const NAME_MIN_CHARS: usize = 3;
/// The most characters of a display name (after trimming).
pub const NAME_MAX_CHARS: usize = 24;
/// The most levels a curve may have.
pub const MAX_LEVELS: usize = 1000;

/// Checks a device id: 1 to 128 printable ASCII characters (trimmed), as
/// the gateway's sign-in accepts them.
pub fn device_id(raw: &str) -> Result<&str, Invalid> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid(
            "device_id must be 1 to 128 printable ASCII characters".to_owned(),
        ));
    }
    Ok(id)
}

/// Checks a session family id: 1 to 64 printable ASCII characters.
pub fn session_id(sid: &str) -> Result<&str, Invalid> {
    if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid("sid must be 1 to 64 printable ASCII characters".to_owned()));
    }
    Ok(sid)
}

/// A valid display name and the key that makes it unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName {
    /// As the player wrote it, trimmed.
    pub name: String,
    /// Lowercased: two names with the same key are the same name.
    pub key: String,
}

impl DisplayName {
    /// Trims `raw` and checks it: 3 to 24 characters, each a letter, a
    /// digit, a space, `_` or `-`, with no two spaces in a row (so names
    /// that look alike are alike).
    pub fn parse(raw: &str) -> Result<DisplayName, Invalid> {
        let name = raw.trim();
        let chars = name.chars().count();
        if !(NAME_MIN_CHARS..=NAME_MAX_CHARS).contains(&chars) {
            return Err(Invalid(format!(
                "display_name must be {NAME_MIN_CHARS} to {NAME_MAX_CHARS} characters, got {chars}"
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '_' | '-')))
        {
            return Err(Invalid(format!(
                "display_name may hold letters, digits, spaces, '_' and '-' only (found {bad:?})"
            )));
        }
        if name.contains("  ") {
            return Err(Invalid("display_name must not hold two spaces in a row".to_owned()));
        }
        Ok(DisplayName {
            name: name.to_owned(),
            key: name.to_lowercase(),
        })
    }
}

/// The xp at which each level starts: level 1 at 0 xp, level `n + 2` at
/// `thresholds[n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelCurve {
    thresholds: Vec<i64>,
}

impl Default for LevelCurve {
    /// 50 levels; level `n + 1` starts at `50 n (n + 1)` xp (100, 300,
    /// 600, 1000, ...), so each level takes 100 xp more than the last.
    fn default() -> LevelCurve {
        LevelCurve {
            thresholds: (1..50).map(|n| 50 * n * (n + 1)).collect(),
        }
    }
}

impl LevelCurve {
    /// Parses a comma list of strictly increasing positive thresholds.
    pub fn parse(raw: &str) -> Result<LevelCurve, String> {
        let thresholds = raw
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<i64>()
                    .map_err(|_| format!("expected a comma list of xp amounts, got {part:?}"))
            })
            .collect::<Result<Vec<i64>, String>>()?;
        LevelCurve::new(thresholds)
    }

    /// A curve from its thresholds (strictly increasing, positive, fewer
    /// than [`MAX_LEVELS`]).
    pub fn new(thresholds: Vec<i64>) -> Result<LevelCurve, String> {
        if thresholds.is_empty() || thresholds.len() >= MAX_LEVELS {
            return Err(format!("expected 1 to {} thresholds", MAX_LEVELS - 1));
        }
        if thresholds[0] <= 0 || thresholds.windows(2).any(|w| w[1] <= w[0]) {
            return Err("thresholds must be positive and strictly increasing".to_owned());
        }
        Ok(LevelCurve { thresholds })
    }

    /// The level of a player with `xp`.
    pub fn level(&self, xp: i64) -> u32 {
        // At most MAX_LEVELS thresholds: the count fits.
        1 + self.thresholds.partition_point(|t| *t <= xp) as u32
    }

    /// The xp at which the level after `xp`'s starts (0 at the last level).
    pub fn next_level_xp(&self, xp: i64) -> i64 {
        self.thresholds
            .get(self.thresholds.partition_point(|t| *t <= xp))
            .copied()
            .unwrap_or(0)
    }
}

/// What a client sees of a player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The player.
    pub player_id: i64,
    /// The chosen display name, if any.
    pub display_name: Option<String>,
    /// Experience.
    pub xp: i64,
    /// Derived from `xp` by the curve.
    pub level: u32,
    /// Where the next level starts (0 at the last).
    pub next_level_xp: i64,
    /// Gold, never negative.
    pub gold: i64,
    /// When the player was created.
    pub created_at_ms: i64,
    /// When the profile last changed.
    pub updated_at_ms: i64,
}

/// What a refresh of a session family found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one: this is the next generation.
    Rotated(i64),
    /// The family (or every session of the player) was revoked.
    Revoked,
    /// The token was valid once but has been used already: the family is
    /// revoked now.
    Reused,
    /// The player does not exist.
    NoPlayer,
}

/// A revocation of sessions, as gateways load them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One session family (a sign-out, or a reused refresh token).
    Session {
        /// Its player.
        player_id: i64,
        /// The family id.
        sid: String,
        /// When it was revoked.
        at_ms: i64,
    },
    /// Every session of a player issued until `before_ms`.
    Player {
        /// The player.
        player_id: i64,
        /// Sessions issued until then are revoked.
        before_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_trimmed_checked_and_keyed_case_insensitively() {
        let name = DisplayName::parse("  Hilda_the-Brave 2 ").unwrap();
        assert_eq!(name.name, "Hilda_the-Brave 2");
        assert_eq!(name.key, "hilda_the-brave 2");
        assert_eq!(DisplayName::parse("ÅSA").unwrap().key, "åsa");
        for bad in [
            "ab",
            "  a  ",
            &"x".repeat(25),
            "a!b",
            "a  b",
            "a\u{202E}bc",
            "a\tbc",
            "名前\u{200B}x",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DisplayName::parse(&"x".repeat(24)).is_ok());
    }

    #[test]
    fn levels_follow_the_curve() {
        let curve = LevelCurve::parse("100, 300,600").unwrap();
        assert_eq!(curve.level(0), 1);
        assert_eq!(curve.level(99), 1);
        assert_eq!(curve.level(100), 2);
        assert_eq!(curve.level(599), 3);
        assert_eq!(curve.level(600), 4);
        assert_eq!(curve.level(i64::MAX), 4);
        assert_eq!(curve.next_level_xp(0), 100);
        assert_eq!(curve.next_level_xp(300), 600);
        assert_eq!(curve.next_level_xp(600), 0);
        for bad in ["", "0", "10,10", "20,10", "a", "-5"] {
            assert!(LevelCurve::parse(bad).is_err(), "{bad:?}");
        }
        let default = LevelCurve::default();
        assert_eq!((default.level(99), default.level(100), default.level(300)), (1, 2, 3));
        assert_eq!(default.level(i64::MAX), 50);
    }

    #[test]
    fn device_and_session_ids_are_printable_ascii() {
        assert_eq!(device_id(" dev-1 ").unwrap(), "dev-1");
        assert!(device_id("").is_err());
        assert!(device_id("a b").is_err());
        assert!(device_id(&"x".repeat(129)).is_err());
        assert!(session_id("s1").is_ok());
        assert!(session_id(&"x".repeat(65)).is_err());
    }
}
