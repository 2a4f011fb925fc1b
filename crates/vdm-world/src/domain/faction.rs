//! Factions and the relation score between every pair of them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::text::{TextRule, invalid, positive_id, text_field};
use crate::error::WorldResult;

/// The lowest relation score (open war).
pub const MIN_SCORE: i32 = -100;
/// The highest relation score (alliance).
pub const MAX_SCORE: i32 = 100;
/// The largest change one adjustment may ask for.
pub const MAX_DELTA: i32 = 200;

/// A faction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faction {
    /// The faction's id, chosen by its author.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// The relation of two factions, `faction_a < faction_b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactionRelation {
    /// The faction with the smaller id.
    pub faction_a: i64,
    /// The faction with the larger id.
    pub faction_b: i64,
    /// [`MIN_SCORE`]..=[`MAX_SCORE`].
    pub score: i32,
}

/// Validates a submitted faction.
pub fn parse_faction(id: i64, name: String) -> WorldResult<Faction> {
    positive_id("id", id)?;
    Ok(Faction {
        id,
        name: text_field("name", name, TextRule::line(100))?,
    })
}

/// Orders a pair of distinct faction ids (the relation is symmetric).
pub fn pair(a: i64, b: i64) -> WorldResult<(i64, i64)> {
    positive_id("faction_a", a)?;
    positive_id("faction_b", b)?;
    if a == b {
        return Err(invalid(format!("a faction has no relation with itself ({a})")));
    }
    Ok((a.min(b), a.max(b)))
}

/// Checks a score to set.
pub fn check_score(score: i32) -> WorldResult<i32> {
    if !(MIN_SCORE..=MAX_SCORE).contains(&score) {
        return Err(invalid(format!(
            "score must be between {MIN_SCORE} and {MAX_SCORE}, got {score}"
        )));
    }
    Ok(score)
}

/// The score after adding `delta`, clamped to the range.
pub fn adjusted_score(current: i32, delta: i32) -> WorldResult<i32> {
    if !(-MAX_DELTA..=MAX_DELTA).contains(&delta) {
        return Err(invalid(format!(
            "delta must be between -{MAX_DELTA} and {MAX_DELTA}, got {delta}"
        )));
    }
    Ok(current.saturating_add(delta).clamp(MIN_SCORE, MAX_SCORE))
}

/// Every pair of `factions` (or every pair that includes `only`), with its
/// stored score or 0, ordered by (a, b).
pub fn all_pairs(factions: &[Faction], stored: &[FactionRelation], only: Option<i64>) -> Vec<FactionRelation> {
    let scores: HashMap<(i64, i64), i32> = stored.iter().map(|r| ((r.faction_a, r.faction_b), r.score)).collect();
    let mut ids: Vec<i64> = factions.iter().map(|f| f.id).collect();
    ids.sort_unstable();
    let mut pairs = Vec::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            if only.is_some_and(|f| f != *a && f != *b) {
                continue;
            }
            pairs.push(FactionRelation {
                faction_a: *a,
                faction_b: *b,
                score: scores.get(&(*a, *b)).copied().unwrap_or(0),
            });
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faction(id: i64) -> Faction {
        Faction {
            id,
            name: format!("f{id}"),
        }
    }

    #[test]
    fn pairs_cover_every_couple_once() {
        let factions = [faction(3), faction(1), faction(2)];
        let stored = [FactionRelation {
            faction_a: 1,
            faction_b: 3,
            score: -40,
        }];
        let pairs = all_pairs(&factions, &stored, None);
        assert_eq!(pairs.len(), 3);
        assert_eq!(
            pairs
                .iter()
                .map(|p| (p.faction_a, p.faction_b, p.score))
                .collect::<Vec<_>>(),
            vec![(1, 2, 0), (1, 3, -40), (2, 3, 0)]
        );
        assert_eq!(all_pairs(&factions, &stored, Some(2)).len(), 2);
    }

    #[test]
    fn scores_clamp_and_pairs_order() {
        assert_eq!(adjusted_score(90, 50).unwrap(), 100);
        assert_eq!(adjusted_score(-90, -50).unwrap(), -100);
        assert!(adjusted_score(0, 201).is_err());
        assert!(check_score(101).is_err());
        assert_eq!(pair(5, 2).unwrap(), (2, 5));
        assert!(pair(2, 2).is_err());
        assert!(pair(0, 2).is_err());
        assert!(parse_faction(1, " ".into()).is_err());
    }
}
