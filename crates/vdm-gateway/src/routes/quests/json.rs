//! The JSON shapes of the quest routes (bodies, queries, answers) and
//! their conversions from and to the quest service's messages.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::quest::v1 as pb;

/// The reward of a quest.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardJson {
    /// Gold.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub gold: i64,
    /// Experience points.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub xp: i64,
    /// Item ids.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub item_ids: Vec<i64>,
    /// How much completing the quest raises the player's standing with the
    /// giver's faction. Absent: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -100, maximum = 100)]
    pub standing: Option<i32>,
    /// How much completing the quest raises the giver's disposition toward
    /// the player. Absent: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -100, maximum = 100)]
    pub disposition: Option<i32>,
}

/// An objective as submitted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObjectiveJson {
    /// What to do.
    pub description: String,
    /// How many times.
    #[schema(minimum = 1, maximum = 100_000)]
    pub target_count: u32,
}

/// `POST /v1/quests` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuestJson {
    /// Short name.
    pub title: String,
    /// Longer text.
    #[serde(default)]
    pub description: String,
    /// The NPC that offers it.
    pub giver_npc_id: i64,
    /// The region where it is offered.
    pub region_id: i64,
    /// The lowest level that may take it.
    #[serde(default)]
    #[schema(maximum = 1_000)]
    pub level_requirement: u32,
    /// What it gives.
    #[serde(default)]
    pub reward: RewardJson,
    /// What must be done.
    #[schema(min_items = 1, max_items = 20)]
    pub objectives: Vec<NewObjectiveJson>,
}

/// `PATCH /v1/quests/{id}` body: fields left out (or null) keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestPatchJson {
    /// Short name.
    pub(super) title: Option<String>,
    /// Longer text.
    pub(super) description: Option<String>,
    /// The NPC that offers it.
    pub(super) giver_npc_id: Option<i64>,
    /// The region where it is offered.
    pub(super) region_id: Option<i64>,
    /// The lowest level that may take it.
    #[schema(maximum = 1_000)]
    pub(super) level_requirement: Option<u32>,
    /// What it gives (replaced whole).
    pub(super) reward: Option<RewardJson>,
}

/// A quest as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestJson {
    id: i64,
    title: String,
    /// Left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    giver_npc_id: i64,
    region_id: i64,
    level_requirement: u32,
    reward: RewardJson,
    objectives: Vec<ObjectiveJson>,
}

/// An objective as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectiveJson {
    id: i64,
    description: String,
    target_count: u32,
}

/// Where a player's quest stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestStatusJson {
    /// Accepted, objectives open.
    Active,
    /// Every objective done.
    Completed,
    /// Failed.
    Failed,
    /// Given up; accepting it again restarts it.
    Abandoned,
}

/// A player's quest as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerQuestJson {
    quest_id: i64,
    status: QuestStatusJson,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    accepted_at: String,
    /// RFC 3339 UTC; only once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    completed_at: Option<String>,
    objectives: Vec<ProgressJson>,
}

/// Progress on one objective.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressJson {
    objective_id: i64,
    progress: u32,
    target_count: u32,
}

/// `GET /v1/quests` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuestsQuery {
    /// Only quests offered in this region.
    #[param(minimum = 1)]
    pub(super) region_id: Option<i64>,
    /// Only quests offered by this NPC.
    #[param(minimum = 1)]
    pub(super) giver_npc_id: Option<i64>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    pub(super) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// `GET /v1/me/quests` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListMineQuery {
    /// Only quests in this state.
    #[param(value_type = Option<QuestStatusJson>)]
    pub(super) status: Option<String>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    pub(super) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// `POST /v1/me/quests/{id}/progress` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    /// The objective to advance.
    pub(super) objective_id: i64,
    /// How many steps (1 when absent).
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1, maximum = 100_000)]
    pub(super) amount: u32,
}

fn one() -> u32 {
    1
}

/// `POST /v1/quests:batchGet` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = QuestBatchGetBody)]
#[serde(deny_unknown_fields)]
pub struct BatchGetBody {
    /// Up to 100 quest ids.
    #[schema(max_items = 100)]
    pub(super) ids: Vec<i64>,
}

pub(super) fn reward_to_pb(reward: RewardJson) -> pb::Reward {
    pb::Reward {
        gold: reward.gold,
        xp: reward.xp,
        item_ids: reward.item_ids,
        standing: reward.standing,
        disposition: reward.disposition,
    }
}

impl From<pb::Quest> for QuestJson {
    fn from(quest: pb::Quest) -> QuestJson {
        let reward = quest.reward.unwrap_or_default();
        QuestJson {
            id: quest.id,
            title: quest.title,
            description: quest.description,
            giver_npc_id: quest.giver_npc_id,
            region_id: quest.region_id,
            level_requirement: quest.level_requirement,
            reward: RewardJson {
                gold: reward.gold,
                xp: reward.xp,
                item_ids: reward.item_ids,
                standing: reward.standing,
                disposition: reward.disposition,
            },
            objectives: quest
                .objectives
                .into_iter()
                .map(|o| ObjectiveJson {
                    id: o.id,
                    description: o.description,
                    target_count: o.target_count,
                })
                .collect(),
        }
    }
}

impl From<pb::PlayerQuest> for PlayerQuestJson {
    fn from(pq: pb::PlayerQuest) -> PlayerQuestJson {
        let status = match pb::QuestStatus::try_from(pq.status) {
            Ok(pb::QuestStatus::Completed) => QuestStatusJson::Completed,
            Ok(pb::QuestStatus::Failed) => QuestStatusJson::Failed,
            Ok(pb::QuestStatus::Abandoned) => QuestStatusJson::Abandoned,
            _ => QuestStatusJson::Active,
        };
        PlayerQuestJson {
            quest_id: pq.quest_id,
            status,
            accepted_at: vdm_kit::rfc3339(pq.accepted_at_ms),
            completed_at: (pq.completed_at_ms != 0).then(|| vdm_kit::rfc3339(pq.completed_at_ms)),
            objectives: pq
                .objectives
                .into_iter()
                .map(|o| ProgressJson {
                    objective_id: o.objective_id,
                    progress: o.progress,
                    target_count: o.target_count,
                })
                .collect(),
        }
    }
}
