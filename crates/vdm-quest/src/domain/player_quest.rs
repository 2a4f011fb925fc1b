//! A player's run through a quest, and the state machine that guards it:
//!
//! ```text
//! (none) ──accept──▶ active ──advance (last objective done)──▶ completed
//!                     │  ▲
//!             abandon │  │ accept (restart, progress reset)
//!                     ▼  │
//!                   abandoned / failed
//! ```
//!
//! Every other move is refused with [`QuestError::InvalidTransition`].

use std::fmt;

use crate::domain::Quest;
use crate::error::{QuestError, QuestResult};

/// Largest amount one advance may add.
pub const MAX_ADVANCE: u32 = 100_000;

/// Where a player stands on a quest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestStatus {
    /// Accepted and in progress.
    Active,
    /// Every objective done.
    Completed,
    /// Failed by the game.
    Failed,
    /// Given up by the player.
    Abandoned,
}

impl QuestStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestStatus::Active => "active",
            QuestStatus::Completed => "completed",
            QuestStatus::Failed => "failed",
            QuestStatus::Abandoned => "abandoned",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<QuestStatus> {
        match name {
            "active" => Some(QuestStatus::Active),
            "completed" => Some(QuestStatus::Completed),
            "failed" => Some(QuestStatus::Failed),
            "abandoned" => Some(QuestStatus::Abandoned),
            _ => None,
        }
    }
}

impl fmt::Display for QuestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Progress on one objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectiveProgress {
    /// The objective.
    pub objective_id: i64,
    /// How much is done (never above the target).
    pub progress: u32,
    /// How much must be done.
    pub target_count: u32,
}

/// A player's quest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerQuest {
    /// The player.
    pub player_id: i64,
    /// The quest.
    pub quest_id: i64,
    /// Where it stands.
    pub status: QuestStatus,
    /// When it was (last) accepted (Unix ms).
    pub accepted_at_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_at_ms: i64,
    /// When it was completed (Unix ms).
    pub completed_at_ms: Option<i64>,
    /// Progress per objective, in the quest's order.
    pub objectives: Vec<ObjectiveProgress>,
}

impl PlayerQuest {
    /// Accepts `quest` for a player, given what the player has on it already.
    pub fn accept(
        existing: Option<PlayerQuest>,
        player_id: i64,
        quest: &Quest,
        now_ms: i64,
    ) -> QuestResult<PlayerQuest> {
        if let Some(existing) = existing
            && matches!(existing.status, QuestStatus::Active | QuestStatus::Completed)
        {
            return Err(QuestError::InvalidTransition {
                quest_id: quest.id,
                action: "accept",
                status: existing.status,
            });
        }
        Ok(PlayerQuest {
            player_id,
            quest_id: quest.id,
            status: QuestStatus::Active,
            accepted_at_ms: now_ms,
            updated_at_ms: now_ms,
            completed_at_ms: None,
            objectives: quest
                .objectives
                .iter()
                .map(|o| ObjectiveProgress {
                    objective_id: o.id,
                    progress: 0,
                    target_count: o.target_count,
                })
                .collect(),
        })
    }

    /// Adds `amount` to one objective, capped at its target; completes the
    /// quest when every objective is done.
    pub fn advance(&mut self, objective_id: i64, amount: u32, now_ms: i64) -> QuestResult<()> {
        if !(1..=MAX_ADVANCE).contains(&amount) {
            return Err(QuestError::Invalid(format!(
                "amount must be between 1 and {MAX_ADVANCE}"
            )));
        }
        if self.status != QuestStatus::Active {
            return Err(QuestError::InvalidTransition {
                quest_id: self.quest_id,
                action: "advance",
                status: self.status,
            });
        }
        let quest_id = self.quest_id;
        let objective = self
            .objectives
            .iter_mut()
            .find(|o| o.objective_id == objective_id)
            .ok_or(QuestError::ObjectiveNotFound { quest_id, objective_id })?;
        objective.progress = objective.progress.saturating_add(amount).min(objective.target_count);
        self.updated_at_ms = now_ms;
        if self.objectives.iter().all(|o| o.progress >= o.target_count) {
            self.status = QuestStatus::Completed;
            self.completed_at_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Gives up an active quest.
    pub fn abandon(&mut self, now_ms: i64) -> QuestResult<()> {
        if self.status != QuestStatus::Active {
            return Err(QuestError::InvalidTransition {
                quest_id: self.quest_id,
                action: "abandon",
                status: self.status,
            });
        }
        self.status = QuestStatus::Abandoned;
        self.updated_at_ms = now_ms;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Objective, Reward};

    fn quest() -> Quest {
        Quest {
            id: 1,
            title: "t".into(),
            description: String::new(),
            giver_npc_id: 1,
            region_id: 1,
            level_requirement: 0,
            reward: Reward::default(),
            objectives: vec![
                Objective {
                    id: 10,
                    description: "a".into(),
                    target_count: 2,
                },
                Objective {
                    id: 11,
                    description: "b".into(),
                    target_count: 1,
                },
            ],
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn completes_when_every_objective_is_done() {
        let mut pq = PlayerQuest::accept(None, 5, &quest(), 100).unwrap();
        pq.advance(10, 5, 101).unwrap();
        assert_eq!(pq.objectives[0].progress, 2, "progress is capped at the target");
        assert_eq!(pq.status, QuestStatus::Active);
        pq.advance(11, 1, 102).unwrap();
        assert_eq!(pq.status, QuestStatus::Completed);
        assert_eq!(pq.completed_at_ms, Some(102));
    }

    #[test]
    fn refuses_invalid_moves() {
        let q = quest();
        let mut pq = PlayerQuest::accept(None, 5, &q, 100).unwrap();
        assert!(matches!(
            PlayerQuest::accept(Some(pq.clone()), 5, &q, 1),
            Err(QuestError::InvalidTransition { .. })
        ));
        assert!(matches!(
            pq.advance(99, 1, 1),
            Err(QuestError::ObjectiveNotFound { .. })
        ));
        assert!(matches!(pq.advance(10, 0, 1), Err(QuestError::Invalid(_))));
        pq.abandon(101).unwrap();
        assert!(matches!(pq.abandon(102), Err(QuestError::InvalidTransition { .. })));
        assert!(matches!(
            pq.advance(10, 1, 102),
            Err(QuestError::InvalidTransition { .. })
        ));
        let restarted = PlayerQuest::accept(Some(pq), 5, &q, 103).unwrap();
        assert_eq!(restarted.status, QuestStatus::Active);
        assert!(restarted.objectives.iter().all(|o| o.progress == 0));
    }
}
