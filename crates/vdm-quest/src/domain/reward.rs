//! What a completed quest owes, as the outbox keeps it until the receiver
//! applied it: the reward (the player service's) and the change of the
//! giver's disposition toward the player (the NPC service's); and how long
//! to wait before trying a delivery again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Quest;

/// First wait after a failed delivery; doubled by each further failure.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Longest wait between two deliveries of one reward: a player service
/// back from a restart gets its rewards within this.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How much completing a quest raises the player's standing with the
/// giver's faction.
pub const STANDING_PER_QUEST: i32 = 5;
/// How much completing a quest raises the giver's disposition toward the
/// player.
pub const DISPOSITION_PER_QUEST: i32 = 10;

/// Everything one completion owes, each part delivered to its own
/// receiver under its own id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owed {
    /// The reward, for the player service; `None` when the quest gives
    /// nothing the player service keeps.
    pub reward: Option<RewardGrant>,
    /// The giver's change of disposition, for the NPC service; `None` when
    /// the quest moves none.
    pub disposition: Option<DispositionChange>,
}

impl Owed {
    /// What `player_id` completing `quest` owes.
    pub fn for_completion(quest: &Quest, player_id: i64) -> Owed {
        Owed {
            reward: RewardGrant::for_completion(quest, player_id),
            disposition: DispositionChange::for_completion(quest, player_id),
        }
    }

    /// Whether nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.reward.is_none() && self.disposition.is_none()
    }
}

/// A change of a quest giver's disposition toward the player who completed
/// the quest, frozen at completion. The NPC service applies it once under
/// `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionChange {
    /// The idempotency key: `quest-<quest id>-player-<player id>-disposition`.
    pub key: String,
    /// The giver.
    pub npc_id: i64,
    /// Who completed the quest.
    pub player_id: i64,
    /// What was completed.
    pub quest_id: i64,
    /// Added to the disposition (the NPC service clamps the result).
    pub delta: i32,
}

impl DispositionChange {
    /// The change `player_id` completing `quest` makes; `None` when the
    /// quest moves no disposition.
    pub fn for_completion(quest: &Quest, player_id: i64) -> Option<DispositionChange> {
        let delta = quest.reward.disposition.unwrap_or(DISPOSITION_PER_QUEST);
        (delta != 0).then(|| DispositionChange {
            key: disposition_key(quest.id, player_id),
            npc_id: quest.giver_npc_id,
            player_id,
            quest_id: quest.id,
            delta,
        })
    }
}

/// A reward owed to a player for completing a quest: everything the grant
/// needs, frozen at completion, so an edit of the quest afterwards changes
/// neither what is delivered nor the payload the player service
/// fingerprints under the grant id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardGrant {
    /// The grant id the player service applies once:
    /// `quest-<quest id>-player-<player id>` (a quest completes once per player).
    pub grant_id: String,
    /// Who earned it.
    pub player_id: i64,
    /// What earned it.
    pub quest_id: i64,
    /// The NPC that gave the quest.
    pub giver_npc_id: i64,
    /// Gold.
    pub gold: i64,
    /// Experience.
    pub xp: i64,
    /// One unit per id.
    pub item_ids: Vec<i64>,
    /// The ledger's reason.
    pub reason: String,
    /// The ledger's source: `quest-<quest id>`.
    pub source_id: String,
    /// How much the player's standing with the giver's faction rises.
    #[serde(default)]
    pub standing: i32,
    /// The giver's faction, once asked: `None` until then (see
    /// [`GiverFaction`]).
    #[serde(default)]
    pub giver_faction: Option<GiverFaction>,
}

/// The faction of a quest's giver, as the NPC service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GiverFaction {
    /// The giver belongs to this faction.
    Faction(i64),
    /// The giver has no faction, no longer exists, or no NPC service is
    /// configured: the reward moves no standing.
    None,
}

impl RewardGrant {
    /// The standing changes the grant carries: `(faction, delta)`, once
    /// the giver's faction is known.
    pub fn standings(&self) -> Vec<(i64, i32)> {
        match self.giver_faction {
            Some(GiverFaction::Faction(id)) if self.standing != 0 => vec![(id, self.standing)],
            _ => Vec::new(),
        }
    }

    /// Whether the grant, its giver's faction known, moves nothing: a
    /// quest that gives only standing, from a giver of no faction. It is
    /// settled without a call (the player service refuses an empty change).
    pub fn is_empty(&self) -> bool {
        self.gold == 0 && self.xp == 0 && self.item_ids.is_empty() && self.standings().is_empty()
    }

    /// Whether the giver's faction still has to be asked before delivery.
    pub fn needs_faction(&self) -> bool {
        self.standing != 0 && self.giver_faction.is_none()
    }
}

impl RewardGrant {
    /// The reward of `quest`, completed by `player_id`; `None` when the
    /// quest gives nothing, standing included (the player service refuses
    /// an empty change).
    pub fn for_completion(quest: &Quest, player_id: i64) -> Option<RewardGrant> {
        let reward = &quest.reward;
        let standing = reward.standing.unwrap_or(STANDING_PER_QUEST);
        if reward.gold == 0 && reward.xp == 0 && reward.item_ids.is_empty() && standing == 0 {
            return None;
        }
        Some(RewardGrant {
            grant_id: grant_id(quest.id, player_id),
            player_id,
            quest_id: quest.id,
            giver_npc_id: quest.giver_npc_id,
            gold: reward.gold,
            xp: reward.xp,
            item_ids: reward.item_ids.clone(),
            reason: format!("completed quest {}", quest.id),
            source_id: format!("quest-{}", quest.id),
            standing,
            giver_faction: None,
        })
    }
}

/// The grant id of `player_id`'s reward for `quest_id`.
pub fn grant_id(quest_id: i64, player_id: i64) -> String {
    format!("quest-{quest_id}-player-{player_id}")
}

/// The idempotency key of the disposition change of `player_id` completing
/// `quest_id`.
pub fn disposition_key(quest_id: i64, player_id: i64) -> String {
    format!("quest-{quest_id}-player-{player_id}-disposition")
}

/// How long to wait before the next delivery of a reward that failed
/// `attempts` times (1 or more): doubling from 200 ms, at most 5 s.
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::Reward;

    fn quest(reward: Reward) -> Quest {
        Quest {
            id: 4,
            title: "Wolves".into(),
            description: String::new(),
            giver_npc_id: 9,
            region_id: 1,
            level_requirement: 1,
            reward,
            objectives: Vec::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_completion_owes_the_quest_reward_under_a_stable_grant_id() {
        let reward = Reward {
            gold: 50,
            xp: 120,
            item_ids: vec![3, 3],
            ..Reward::default()
        };
        let grant = RewardGrant::for_completion(&quest(reward), 77).unwrap();
        assert_eq!(grant.grant_id, "quest-4-player-77");
        assert_eq!(
            (grant.gold, grant.xp, grant.item_ids.as_slice()),
            (50, 120, &[3, 3][..])
        );
        assert_eq!((grant.giver_npc_id, grant.source_id.as_str()), (9, "quest-4"));
        // Standing alone is a reward; nothing at all is none.
        let standing_only = RewardGrant::for_completion(&quest(Reward::default()), 77).unwrap();
        assert_eq!(standing_only.standing, STANDING_PER_QUEST);
        let nothing = Reward {
            standing: Some(0),
            ..Reward::default()
        };
        assert_eq!(RewardGrant::for_completion(&quest(nothing), 77), None);
    }

    #[test]
    fn standing_goes_to_the_givers_faction_once_known() {
        let mut grant = RewardGrant::for_completion(
            &quest(Reward {
                gold: 1,
                ..Reward::default()
            }),
            77,
        )
        .unwrap();
        assert!(grant.needs_faction());
        assert!(grant.standings().is_empty());
        grant.giver_faction = Some(GiverFaction::Faction(3));
        assert!(!grant.needs_faction());
        assert_eq!(grant.standings(), [(3, STANDING_PER_QUEST)]);
        grant.giver_faction = Some(GiverFaction::None);
        assert!(grant.standings().is_empty());
        assert!(!grant.is_empty(), "it still gives gold");
        grant.gold = 0;
        assert!(grant.is_empty());
    }

    #[test]
    fn a_completion_owes_the_giver_a_disposition_change_whatever_the_reward() {
        let nothing = Reward {
            standing: Some(0),
            ..Reward::default()
        };
        let owed = Owed::for_completion(&quest(nothing), 77);
        assert_eq!(owed.reward, None);
        assert_eq!(
            owed.disposition,
            Some(DispositionChange {
                key: "quest-4-player-77-disposition".into(),
                npc_id: 9,
                player_id: 77,
                quest_id: 4,
                delta: DISPOSITION_PER_QUEST,
            })
        );
        assert!(!owed.is_empty());
    }

    #[test]
    fn a_quest_names_its_own_amounts() {
        let reward = Reward {
            gold: 1,
            standing: Some(-20),
            disposition: Some(0),
            ..Reward::default()
        };
        let owed = Owed::for_completion(&quest(reward), 77);
        assert_eq!(owed.reward.map(|g| g.standing), Some(-20));
        assert_eq!(
            owed.disposition, None,
            "a quest that moves no disposition owes no change"
        );
        let owed = Owed::for_completion(
            &quest(Reward {
                disposition: Some(-15),
                ..Reward::default()
            }),
            77,
        );
        assert_eq!(owed.disposition.map(|d| d.delta), Some(-15));
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), Duration::from_millis(200));
        assert_eq!(retry_delay(2), Duration::from_millis(400));
        assert_eq!(retry_delay(4), Duration::from_millis(1600));
        assert_eq!(retry_delay(6), Duration::from_secs(5));
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(5));
    }
}
