//! Quest rules with no IO: validating new quests, the player quest state
//! machine, what a completion owes, and pagination cursors.

mod player_quest;
mod quest;
mod reward;

pub use player_quest::{ObjectiveProgress, PlayerQuest, QuestStatus};
pub use quest::{NewObjective, NewQuest, Objective, Quest, QuestInput, QuestPatch, Reward, positive_id};
pub use reward::{
    DISPOSITION_PER_QUEST, DispositionChange, GiverFaction, Owed, RewardGrant, STANDING_PER_QUEST, disposition_key,
    grant_id, retry_delay,
};
pub use vdm_kit::page::Page;
