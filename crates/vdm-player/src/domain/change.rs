//! Changes of a player's balances (gold, xp, units of items): checking a
//! request, applying it to the balances it touches, and the ledger rows it
//! makes. A change is applied whole or refused whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vdm_kit::validate::{Invalid, TextRule, positive_id, text_field};

use super::account::Profile;
use crate::error::{PlayerError, PlayerResult};

/// The largest amount one change may carry per balance.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The most distinct items one change may carry.
const MAX_ITEMS: usize = 100;
/// The most factions one change may move the standing with.
const MAX_STANDINGS: usize = 32;
/// The largest change of one standing.
pub const MAX_STANDING_DELTA: i32 = 200;
/// The range of a standing, as of an NPC's disposition.
pub const STANDING_RANGE: (i32, i32) = (-100, 100);

/// Whether a change adds or takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Adds to balances (a grant, a reward).
    Grant,
    /// Takes from balances (a removal, spending).
    Remove,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Grant => "grant",
            Direction::Remove => "remove",
        }
    }

    fn signed(self, amount: i64) -> i64 {
        match self {
            Direction::Grant => amount,
            Direction::Remove => -amount,
        }
    }
}

/// What a change moves: every amount zero or positive, items merged by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amounts {
    /// Gold.
    pub gold: i64,
    /// Experience.
    pub xp: i64,
    /// Units by item id.
    pub items: BTreeMap<i64, i64>,
    /// Standing deltas by faction id (only grants carry them).
    pub standings: BTreeMap<i64, i32>,
}

impl Amounts {
    /// [`Amounts::parse`] with changes of standing (`(faction id, delta)`,
    /// one per faction), which alone are enough for a change.
    pub fn parse_with_standings(
        gold: i64,
        xp: i64,
        items: impl IntoIterator<Item = (i64, i64)>,
        standings: impl IntoIterator<Item = (i64, i32)>,
    ) -> Result<Amounts, Invalid> {
        let mut deltas = BTreeMap::new();
        for (faction_id, delta) in standings {
            positive_id("faction_id", faction_id)?;
            if delta == 0 || delta.abs() > MAX_STANDING_DELTA {
                return Err(Invalid(format!(
                    "standing delta of faction {faction_id} must be -{MAX_STANDING_DELTA} to {MAX_STANDING_DELTA} and not 0, got {delta}"
                )));
            }
            if deltas.insert(faction_id, delta).is_some() {
                return Err(Invalid(format!("faction {faction_id} is listed twice in standings")));
            }
        }
        if deltas.len() > MAX_STANDINGS {
            return Err(Invalid(format!("at most {MAX_STANDINGS} factions per change")));
        }
        if deltas.is_empty() {
            return Amounts::parse(gold, xp, items);
        }
        // Standing alone is a change: check the rest with a placeholder
        // that makes it non-empty, then drop it.
        let mut amounts = Amounts::parse(gold, xp.max(1), items)?;
        amounts.xp = xp;
        amount("xp", xp)?;
        amounts.standings = deltas;
        Ok(amounts)
    }

    /// Checks the amounts of a request (`items`: `(item id, quantity)`,
    /// an id may repeat) and merges the items by id.
    pub fn parse(gold: i64, xp: i64, items: impl IntoIterator<Item = (i64, i64)>) -> Result<Amounts, Invalid> {
        amount("gold", gold)?;
        amount("xp", xp)?;
        let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
        for (item_id, quantity) in items {
            positive_id("item_id", item_id)?;
            if quantity <= 0 {
                return Err(Invalid(format!(
                    "quantity of item {item_id} must be positive, got {quantity}"
                )));
            }
            let total = merged.entry(item_id).or_insert(0);
            *total = total.saturating_add(quantity);
            amount(&format!("quantity of item {item_id}"), *total)?;
        }
        if merged.len() > MAX_ITEMS {
            return Err(Invalid(format!("at most {MAX_ITEMS} distinct items per change")));
        }
        if gold == 0 && xp == 0 && merged.is_empty() {
            return Err(Invalid("a change must move some gold, xp or items".to_owned()));
        }
        Ok(Amounts {
            gold,
            xp,
            items: merged,
            standings: BTreeMap::new(),
        })
    }
}

fn amount(field: &str, value: i64) -> Result<(), Invalid> {
    if value < 0 {
        return Err(Invalid(format!("{field} must not be negative, got {value}")));
    }
    if value > MAX_AMOUNT {
        return Err(Invalid(format!("{field} must be at most {MAX_AMOUNT}, got {value}")));
    }
    Ok(())
}

/// A checked change of one player's balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The player.
    pub player_id: i64,
    /// Adds or takes.
    pub direction: Direction,
    /// What it moves.
    pub amounts: Amounts,
    /// Why (in the ledger).
    pub reason: String,
    /// What caused it (in the ledger; may be empty).
    pub source_id: String,
    /// Makes it apply once: a second change with the same id replays the
    /// first's result.
    pub grant_id: Option<String>,
}

impl Change {
    /// Checks the player, reason, source id and grant id of a change.
    pub fn parse(
        player_id: i64,
        direction: Direction,
        amounts: Amounts,
        reason: String,
        source_id: String,
        grant_id: Option<String>,
    ) -> Result<Change, Invalid> {
        positive_id("player_id", player_id)?;
        let reason = text_field("reason", reason, TextRule::line(200))?;
        let source_id = text_field("source_id", source_id, TextRule::line(128).optional())?;
        if let Some(id) = &grant_id
            && (id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Invalid(
                "grant_id must be 1 to 128 printable ASCII characters".to_owned(),
            ));
        }
        Ok(Change {
            player_id,
            direction,
            amounts,
            reason,
            source_id,
            grant_id,
        })
    }

    /// A stable fingerprint of everything the change does, to tell a
    /// replay of a grant id from a different payload under it.
    pub fn fingerprint(&self) -> String {
        let mut ints = vec![self.player_id, self.amounts.gold, self.amounts.xp];
        for (item_id, quantity) in &self.amounts.items {
            ints.extend([*item_id, *quantity]);
        }
        if !self.amounts.standings.is_empty() {
            // A marker, so that standings never read as more items.
            ints.push(-1);
            for (faction_id, delta) in &self.amounts.standings {
                ints.extend([*faction_id, i64::from(*delta)]);
            }
        }
        vdm_kit::validate::fingerprint(&[self.direction.as_str(), &self.reason, &self.source_id], &ints)
    }

    /// Applies the change to `before` (which holds a stack, maybe 0, for
    /// every item of the change; `max_stacks` the limit of each): the
    /// balances after it and one ledger row per balance it moved. Refused
    /// whole when a balance would go negative, a stack past its limit, or a
    /// balance past [`i64::MAX`].
    pub fn apply(&self, before: &Balances, max_stacks: &BTreeMap<i64, i64>) -> PlayerResult<Applied> {
        let player_id = self.player_id;
        let mut after = before.clone();
        let mut entries = Vec::new();
        let mut moved = |kind: LedgerKind, item_id: Option<i64>, have: i64, amount: i64, what: String| {
            let delta = self.direction.signed(amount);
            let balance = have
                .checked_add(delta)
                .ok_or_else(|| PlayerError::Overflow(what.clone()))?;
            if balance < 0 {
                return Err(PlayerError::Insufficient {
                    player_id,
                    what,
                    have,
                    asked: amount,
                });
            }
            entries.push(NewEntry {
                kind,
                item_id,
                faction_id: None,
                amount: delta,
                balance_after: balance,
            });
            Ok(balance)
        };
        if self.amounts.gold != 0 {
            after.gold = moved(
                LedgerKind::Gold,
                None,
                before.gold,
                self.amounts.gold,
                "gold".to_owned(),
            )?;
        }
        if self.amounts.xp != 0 {
            after.xp = moved(LedgerKind::Xp, None, before.xp, self.amounts.xp, "xp".to_owned())?;
        }
        for (item_id, quantity) in &self.amounts.items {
            let have = before.stacks.get(item_id).copied().unwrap_or(0);
            let what = format!("units of item {item_id}");
            let units = moved(LedgerKind::Item, Some(*item_id), have, *quantity, what)?;
            let max_stack = max_stacks
                .get(item_id)
                .copied()
                .ok_or(PlayerError::ItemNotFound(*item_id))?;
            // A stack may sit above a limit an operator lowered later:
            // removing from it is fine, adding to it is not.
            if self.direction == Direction::Grant && units > max_stack {
                return Err(PlayerError::StackFull {
                    player_id,
                    item_id: *item_id,
                    max_stack,
                    have,
                    added: *quantity,
                });
            }
            after.stacks.insert(*item_id, units);
        }
        // Standing is clamped, as a disposition is: a delta past the end
        // moves it to the end, and the ledger row says how far it moved.
        for (faction_id, delta) in &self.amounts.standings {
            let have = before.standings.get(faction_id).copied().unwrap_or(0);
            let standing = have.saturating_add(*delta).clamp(STANDING_RANGE.0, STANDING_RANGE.1);
            entries.push(NewEntry {
                kind: LedgerKind::Standing,
                item_id: None,
                faction_id: Some(*faction_id),
                amount: i64::from(standing - have),
                balance_after: i64::from(standing),
            });
            after.standings.insert(*faction_id, standing);
        }
        Ok(Applied { after, entries })
    }
}

/// The balances a change touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balances {
    /// Gold.
    pub gold: i64,
    /// Experience.
    pub xp: i64,
    /// Units held, by item id (0 for an item not held).
    pub stacks: BTreeMap<i64, i64>,
    /// Standing by faction id (0 for a faction with none yet).
    pub standings: BTreeMap<i64, i32>,
}

/// A change applied: the balances after it and its ledger rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The balances after the change.
    pub after: Balances,
    /// One row per balance moved.
    pub entries: Vec<NewEntry>,
}

/// What a ledger row records about one balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Gold.
    Gold,
    /// Experience.
    Xp,
    /// Units of an item.
    Item,
    /// Standing with a faction.
    Standing,
}

impl LedgerKind {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Gold => "gold",
            LedgerKind::Xp => "xp",
            LedgerKind::Item => "item",
            LedgerKind::Standing => "standing",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<LedgerKind> {
        [LedgerKind::Gold, LedgerKind::Xp, LedgerKind::Item, LedgerKind::Standing]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A ledger row about to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry {
    /// Which balance.
    pub kind: LedgerKind,
    /// The item, for [`LedgerKind::Item`].
    pub item_id: Option<i64>,
    /// The faction, for [`LedgerKind::Standing`].
    pub faction_id: Option<i64>,
    /// Signed change.
    pub amount: i64,
    /// The balance after it.
    pub balance_after: i64,
}

/// A stored ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Its id (ledger order).
    pub id: i64,
    /// The player.
    pub player_id: i64,
    /// Which balance.
    pub kind: LedgerKind,
    /// The item, for [`LedgerKind::Item`].
    pub item_id: Option<i64>,
    /// The faction, for [`LedgerKind::Standing`].
    pub faction_id: Option<i64>,
    /// Signed change.
    pub amount: i64,
    /// The balance after it.
    pub balance_after: i64,
    /// Why.
    pub reason: String,
    /// What caused it.
    pub source_id: String,
    /// The grant id of the change, if it had one.
    pub grant_id: Option<String>,
    /// When.
    pub created_at_ms: i64,
}

/// A player's standing with one faction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The faction.
    pub faction_id: i64,
    /// -100..=100.
    pub standing: i32,
    /// When it last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// What a change did, as its caller (and a replay of its grant id) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The profile right after the change.
    pub profile: Profile,
    /// The level before it.
    pub previous_level: u32,
    /// Whether an earlier call with the same grant id applied it.
    #[serde(skip)]
    pub replayed: bool,
}

impl Outcome {
    /// Whether the change raised the player's level.
    pub fn leveled_up(&self) -> bool {
        self.profile.level > self.previous_level
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(direction: Direction, gold: i64, items: &[(i64, i64)]) -> Change {
        let amounts = Amounts::parse(gold, 0, items.iter().copied()).unwrap();
        Change::parse(7, direction, amounts, "test".into(), String::new(), None).unwrap()
    }

    #[test]
    fn amounts_are_checked_and_merged() {
        let amounts = Amounts::parse(0, 5, [(3, 1), (3, 2), (1, 1)]).unwrap();
        assert_eq!(amounts.items, BTreeMap::from([(1, 1), (3, 3)]));
        assert!(
            Amounts::parse(-1, 0, [])
                .unwrap_err()
                .0
                .starts_with("gold must not be negative")
        );
        assert!(Amounts::parse(0, -1, []).is_err());
        assert!(Amounts::parse(0, 0, [(1, 0)]).is_err());
        assert!(Amounts::parse(0, 0, [(0, 1)]).is_err());
        assert!(Amounts::parse(0, 0, []).unwrap_err().0.contains("must move"));
        assert!(Amounts::parse(MAX_AMOUNT + 1, 0, []).is_err());
    }

    #[test]
    fn applying_moves_balances_and_writes_a_row_each() {
        let before = Balances {
            gold: 10,
            xp: 0,
            stacks: BTreeMap::from([(1, 4)]),
            standings: BTreeMap::new(),
        };
        let limits = BTreeMap::from([(1, 5)]);
        let applied = change(Direction::Grant, 5, &[(1, 1)]).apply(&before, &limits).unwrap();
        assert_eq!(applied.after.gold, 15);
        assert_eq!(applied.after.stacks[&1], 5);
        assert_eq!(applied.entries.len(), 2);
        assert_eq!(applied.entries[1].balance_after, 5);

        let full = change(Direction::Grant, 0, &[(1, 2)])
            .apply(&before, &limits)
            .unwrap_err();
        assert!(
            matches!(
                full,
                PlayerError::StackFull {
                    max_stack: 5,
                    have: 4,
                    ..
                }
            ),
            "{full}"
        );
        let broke = change(Direction::Remove, 11, &[]).apply(&before, &limits).unwrap_err();
        assert!(
            matches!(
                broke,
                PlayerError::Insufficient {
                    have: 10,
                    asked: 11,
                    ..
                }
            ),
            "{broke}"
        );
        let spent = change(Direction::Remove, 10, &[(1, 4)])
            .apply(&before, &limits)
            .unwrap();
        assert_eq!((spent.after.gold, spent.after.stacks[&1]), (0, 0));
        assert_eq!(spent.entries[0].amount, -10);
    }

    #[test]
    fn standings_are_clamped_and_recorded() {
        let amounts = Amounts::parse_with_standings(0, 0, [], [(3, 10), (4, -30)]).unwrap();
        let change = Change::parse(7, Direction::Grant, amounts, "quest".into(), String::new(), None).unwrap();
        let before = Balances {
            standings: BTreeMap::from([(3, 95)]),
            ..Balances::default()
        };
        let applied = change.apply(&before, &BTreeMap::new()).unwrap();
        assert_eq!(applied.after.standings, BTreeMap::from([(3, 100), (4, -30)]));
        let rows: Vec<_> = applied
            .entries
            .iter()
            .map(|e| (e.kind, e.faction_id, e.amount, e.balance_after))
            .collect();
        assert_eq!(
            rows,
            [
                (LedgerKind::Standing, Some(3), 5, 100),
                (LedgerKind::Standing, Some(4), -30, -30)
            ]
        );
        assert!(Amounts::parse_with_standings(0, 0, [], [(3, 0)]).is_err());
        assert!(Amounts::parse_with_standings(0, 0, [], [(3, 201)]).is_err());
        assert!(Amounts::parse_with_standings(0, 0, [], [(3, 1), (3, 2)]).is_err());
        assert!(Amounts::parse_with_standings(0, 0, [], [(0, 1)]).is_err());
        assert!(Amounts::parse_with_standings(0, 0, [], []).is_err());
        assert_eq!(Amounts::parse_with_standings(0, 0, [], [(3, 1)]).unwrap().xp, 0);
    }

    #[test]
    fn fingerprints_tell_payloads_apart() {
        let a = change(Direction::Grant, 5, &[(1, 1)]);
        assert_eq!(a.fingerprint(), change(Direction::Grant, 5, &[(1, 1)]).fingerprint());
        assert_ne!(a.fingerprint(), change(Direction::Grant, 6, &[(1, 1)]).fingerprint());
        assert_ne!(a.fingerprint(), change(Direction::Remove, 5, &[(1, 1)]).fingerprint());
        assert_ne!(a.fingerprint(), change(Direction::Grant, 5, &[(2, 1)]).fingerprint());
        let mut with_standing = a.clone();
        with_standing.amounts.standings.insert(3, 5);
        assert_ne!(a.fingerprint(), with_standing.fingerprint());
    }
}
