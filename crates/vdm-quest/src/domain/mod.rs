//! Quest rules with no IO: validating new quests, the player quest state
//! machine, the reward a completion owes, and pagination cursors.

mod player_quest;
mod quest;
mod reward;

pub use player_quest::{ObjectiveProgress, PlayerQuest, QuestStatus};
pub use quest::{NewObjective, NewQuest, Objective, Quest, QuestInput, QuestPatch, Reward, positive_id};
pub use reward::{GiverFaction, RewardGrant, STANDING_PER_QUEST, grant_id, retry_delay};
pub use vdm_kit::page::Page;
