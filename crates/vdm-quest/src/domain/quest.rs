//! Quest definitions and the rules a new one must pass.

use serde::{Deserialize, Serialize};

use crate::error::{QuestError, QuestResult};

/// Most objectives one quest may have.
pub const MAX_OBJECTIVES: usize = 20;
/// Most reward items one quest may give.
pub const MAX_REWARD_ITEMS: usize = 32;
/// Largest target count of one objective.
pub const MAX_TARGET_COUNT: u32 = 100_000;
/// Highest level requirement.
pub const MAX_LEVEL: u32 = 1_000;
/// Largest gold or xp reward.
pub const MAX_REWARD: i64 = 1_000_000_000;
/// Largest change of standing or disposition one quest may give (either
/// way): the whole width of the -100..=100 scales.
pub const MAX_AMOUNT: i32 = 100;

/// A stored quest definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quest {
    /// The quest's id.
    pub id: i64,
    /// Short name shown in the quest log.
    pub title: String,
    /// Longer text.
    pub description: String,
    /// The NPC that offers the quest.
    pub giver_npc_id: i64,
    /// The region where it is offered.
    pub region_id: i64,
    /// The lowest player level that may take it.
    pub level_requirement: u32,
    /// What completing it gives.
    pub reward: Reward,
    /// What must be done, in order of display.
    pub objectives: Vec<Objective>,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// What a completed quest gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    /// Gold.
    pub gold: i64,
    /// Experience points.
    pub xp: i64,
    /// Item ids.
    pub item_ids: Vec<i64>,
    /// How much completing it raises the player's standing with the giver's
    /// faction; `None`: [`super::STANDING_PER_QUEST`].
    #[serde(default)]
    pub standing: Option<i32>,
    /// How much completing it raises the giver's disposition toward the
    /// player; `None`: [`super::DISPOSITION_PER_QUEST`].
    #[serde(default)]
    pub disposition: Option<i32>,
}

/// One step of a quest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// The objective's id.
    pub id: i64,
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

/// A quest as a client submits it, before validation.
#[derive(Debug, Clone, Default)]
pub struct QuestInput {
    /// See [`Quest::title`].
    pub title: String,
    /// See [`Quest::description`].
    pub description: String,
    /// See [`Quest::giver_npc_id`].
    pub giver_npc_id: i64,
    /// See [`Quest::region_id`].
    pub region_id: i64,
    /// See [`Quest::level_requirement`].
    pub level_requirement: u32,
    /// See [`Quest::reward`].
    pub reward: Reward,
    /// Objectives as (description, target count).
    pub objectives: Vec<(String, u32)>,
}

/// A validated quest, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuest {
    /// See [`Quest::title`].
    pub title: String,
    /// See [`Quest::description`].
    pub description: String,
    /// See [`Quest::giver_npc_id`].
    pub giver_npc_id: i64,
    /// See [`Quest::region_id`].
    pub region_id: i64,
    /// See [`Quest::level_requirement`].
    pub level_requirement: u32,
    /// See [`Quest::reward`].
    pub reward: Reward,
    /// The objectives in display order.
    pub objectives: Vec<NewObjective>,
}

/// A validated objective, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObjective {
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

impl NewQuest {
    /// Validates a submitted quest, naming the first field at fault.
    pub fn parse(input: QuestInput) -> QuestResult<NewQuest> {
        let title = text_field("title", input.title, TextRule::line(200))?;
        let description = text_field("description", input.description, TextRule::paragraph(4_000).optional())?;
        positive_id("giver_npc_id", input.giver_npc_id)?;
        positive_id("region_id", input.region_id)?;
        if input.level_requirement > MAX_LEVEL {
            return Err(invalid(format!("level_requirement must be at most {MAX_LEVEL}")));
        }
        let reward = input.reward;
        if !(0..=MAX_REWARD).contains(&reward.gold) {
            return Err(invalid(format!("reward.gold must be between 0 and {MAX_REWARD}")));
        }
        if !(0..=MAX_REWARD).contains(&reward.xp) {
            return Err(invalid(format!("reward.xp must be between 0 and {MAX_REWARD}")));
        }
        if reward.item_ids.len() > MAX_REWARD_ITEMS {
            return Err(invalid(format!(
                "reward.item_ids may hold at most {MAX_REWARD_ITEMS} items"
            )));
        }
        if let Some(bad) = reward.item_ids.iter().find(|id| **id <= 0) {
            return Err(invalid(format!("reward.item_ids must be positive ids, got {bad}")));
        }
        for (field, amount) in [
            ("reward.standing", reward.standing),
            ("reward.disposition", reward.disposition),
        ] {
            if let Some(amount) = amount
                && !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount)
            {
                return Err(invalid(format!(
                    "{field} must be between -{MAX_AMOUNT} and {MAX_AMOUNT}, got {amount}"
                )));
            }
        }
        if input.objectives.is_empty() {
            return Err(invalid("objectives must hold at least one objective".to_owned()));
        }
        if input.objectives.len() > MAX_OBJECTIVES {
            return Err(invalid(format!(
                "objectives may hold at most {MAX_OBJECTIVES} objectives"
            )));
        }
        let objectives = input
            .objectives
            .into_iter()
            .enumerate()
            .map(|(i, (description, target_count))| {
                let description = text_field(
                    &format!("objectives[{i}].description"),
                    description,
                    TextRule::line(500),
                )?;
                if !(1..=MAX_TARGET_COUNT).contains(&target_count) {
                    return Err(invalid(format!(
                        "objectives[{i}].target_count must be between 1 and {MAX_TARGET_COUNT}"
                    )));
                }
                Ok(NewObjective {
                    description,
                    target_count,
                })
            })
            .collect::<QuestResult<Vec<_>>>()?;
        Ok(NewQuest {
            title,
            description,
            giver_npc_id: input.giver_npc_id,
            region_id: input.region_id,
            level_requirement: input.level_requirement,
            reward,
            objectives,
        })
    }

    /// A stable fingerprint of the quest, to tell an idempotent retry from a
    /// different request that reuses the key (FNV-1a over every field).
    pub fn fingerprint(&self) -> String {
        let mut hash = vdm_kit::hash::Fnv64::default();
        hash.str(&self.title);
        hash.str(&self.description);
        hash.int(self.giver_npc_id);
        hash.int(self.region_id);
        hash.int(i64::from(self.level_requirement));
        hash.int(self.reward.gold);
        hash.int(self.reward.xp);
        hash.int(self.reward.item_ids.len() as i64);
        for id in &self.reward.item_ids {
            hash.int(*id);
        }
        // Fed only when given, so a request without them keeps the
        // fingerprint it had before quests could name them.
        for (name, amount) in [
            ("standing", self.reward.standing),
            ("disposition", self.reward.disposition),
        ] {
            if let Some(amount) = amount {
                hash.str(name);
                hash.int(i64::from(amount));
            }
        }
        for objective in &self.objectives {
            hash.str(&objective.description);
            hash.int(i64::from(objective.target_count));
        }
        hash.hex()
    }
}

/// Changes to a quest's definition; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct QuestPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New giver.
    pub giver_npc_id: Option<i64>,
    /// New region.
    pub region_id: Option<i64>,
    /// New level requirement.
    pub level_requirement: Option<u32>,
    /// New reward.
    pub reward: Option<Reward>,
}

impl Quest {
    /// Applies a patch under the same rules as a new quest.
    pub fn patched(&self, patch: QuestPatch, now_ms: i64) -> QuestResult<Quest> {
        let input = QuestInput {
            title: patch.title.unwrap_or_else(|| self.title.clone()),
            description: patch.description.unwrap_or_else(|| self.description.clone()),
            giver_npc_id: patch.giver_npc_id.unwrap_or(self.giver_npc_id),
            region_id: patch.region_id.unwrap_or(self.region_id),
            level_requirement: patch.level_requirement.unwrap_or(self.level_requirement),
            reward: patch.reward.unwrap_or_else(|| self.reward.clone()),
            objectives: self
                .objectives
                .iter()
                .map(|o| (o.description.clone(), o.target_count))
                .collect(),
        };
        let valid = NewQuest::parse(input)?;
        Ok(Quest {
            id: self.id,
            title: valid.title,
            description: valid.description,
            giver_npc_id: valid.giver_npc_id,
            region_id: valid.region_id,
            level_requirement: valid.level_requirement,
            reward: valid.reward,
            objectives: self.objectives.clone(),
            created_at_ms: self.created_at_ms,
            updated_at_ms: now_ms,
        })
    }
}

pub use vdm_kit::validate::{TextRule, positive_id, text_field};

fn invalid(message: String) -> QuestError {
    QuestError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> QuestInput {
        QuestInput {
            title: "Wolves at the Mill".into(),
            description: "The miller is afraid.".into(),
            giver_npc_id: 7,
            region_id: 2,
            level_requirement: 3,
            reward: Reward {
                gold: 50,
                xp: 120,
                item_ids: vec![4],
                ..Reward::default()
            },
            objectives: vec![("Slay wolves".into(), 5)],
        }
    }

    #[test]
    fn accepts_a_good_quest_and_trims_text() {
        let mut good = input();
        good.title = "  Wolves  ".into();
        assert_eq!(NewQuest::parse(good).unwrap().title, "Wolves");
    }

    #[test]
    fn names_the_field_at_fault() {
        type Mutation = fn(&mut QuestInput);
        let cases: Vec<(Mutation, &str)> = vec![
            (|q| q.title = " ".into(), "title"),
            (|q| q.giver_npc_id = 0, "giver_npc_id"),
            (|q| q.region_id = -1, "region_id"),
            (|q| q.level_requirement = 5000, "level_requirement"),
            (|q| q.reward.gold = -1, "reward.gold"),
            (|q| q.reward.item_ids = vec![0], "reward.item_ids"),
            (|q| q.reward.standing = Some(101), "reward.standing"),
            (|q| q.reward.disposition = Some(-101), "reward.disposition"),
            (|q| q.objectives.clear(), "objectives"),
            (|q| q.objectives[0].1 = 0, "objectives[0].target_count"),
            (|q| q.objectives[0].0 = "x\u{0}".into(), "objectives[0].description"),
            (|q| q.title = "x".repeat(201), "title"),
        ];
        for (mutate, field) in cases {
            let mut bad = input();
            mutate(&mut bad);
            let err = NewQuest::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(field), "{err} should name {field}");
        }
    }

    #[test]
    fn fingerprint_tells_requests_apart() {
        let a = NewQuest::parse(input()).unwrap();
        let mut other = input();
        other.objectives[0].1 = 6;
        let b = NewQuest::parse(other).unwrap();
        assert_eq!(a.fingerprint(), NewQuest::parse(input()).unwrap().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut amounts = input();
        amounts.reward.standing = Some(5);
        let c = NewQuest::parse(amounts.clone()).unwrap();
        assert_ne!(
            a.fingerprint(),
            c.fingerprint(),
            "an amount given is part of the request"
        );
        amounts.reward.standing = None;
        amounts.reward.disposition = Some(5);
        assert_ne!(c.fingerprint(), NewQuest::parse(amounts).unwrap().fingerprint());
    }
}
