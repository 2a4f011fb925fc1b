//! Quest rules with no IO: validating new quests, the player quest state
//! machine, and pagination cursors.

mod player_quest;
mod quest;

pub use player_quest::{ObjectiveProgress, PlayerQuest, QuestStatus};
pub use quest::{NewObjective, NewQuest, Objective, Quest, QuestInput, QuestPatch, Reward, positive_id};
pub use vdm_kit::page::Page;
