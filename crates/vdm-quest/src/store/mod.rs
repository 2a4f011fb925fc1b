//! Reading and writing the quest tables. Every read of quests with their
//! objectives takes a constant number of queries (no N+1): one for the quest
//! rows, one for all their objectives.

pub mod entities;
pub mod migration;
pub mod outbox;

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr, TransactionTrait,
};

use vdm_kit::idempotency::{Inserted, check_fingerprint, create_or_replay, is_unique_violation, key_refused};

use self::entities::{idempotency_key, objective, player_quest, quest};
use self::outbox::Delivery;
use crate::domain::{NewQuest, Objective, ObjectiveProgress, Page, PlayerQuest, Quest, QuestStatus, Reward};
use crate::error::{QuestError, QuestResult};

/// Filters of a quest listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuestFilter {
    /// Only quests offered in this region.
    pub region_id: Option<i64>,
    /// Only quests given by this NPC.
    pub giver_npc_id: Option<i64>,
}

pub use vdm_kit::idempotency::Created;

/// A stored player quest with the version its next update must match.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The player quest.
    pub quest: PlayerQuest,
    /// The row version read.
    pub version: i64,
}

/// A player quest as stored, waiting for its quest's objectives (the
/// targets come from the definition, which the caller reads from the
/// cache): one statement for a page of a player's quests instead of two.
#[derive(Debug, Clone)]
pub struct StoredPlayerQuest(player_quest::Model);

impl StoredPlayerQuest {
    /// The quest it is progress on.
    pub fn quest_id(&self) -> i64 {
        self.0.quest_id
    }

    /// Whether it is in `status`.
    pub fn is(&self, status: QuestStatus) -> bool {
        self.0.status == status.as_str()
    }

    /// The row `pq` was written as, at `version`.
    pub fn written(pq: &PlayerQuest, version: i64) -> StoredPlayerQuest {
        StoredPlayerQuest(player_quest::Model {
            player_id: pq.player_id,
            quest_id: pq.quest_id,
            status: pq.status.as_str().to_owned(),
            accepted_at_ms: pq.accepted_at_ms,
            updated_at_ms: pq.updated_at_ms,
            completed_at_ms: pq.completed_at_ms,
            progress: progress_json(pq),
            version,
        })
    }

    /// The player quest, with `quest`'s objectives and their targets.
    pub fn with_definition(self, quest: &Quest) -> QuestResult<PlayerQuest> {
        to_player_quest(self.0, quest.objectives.iter().map(|o| (o.id, o.target_count)))
    }
}

/// The quest tables behind one database pool.
#[derive(Clone)]
pub struct QuestStore {
    db: DatabaseConnection,
}

impl QuestStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> QuestStore {
        QuestStore { db }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> QuestResult<()> {
        self.db.ping().await.map_err(QuestError::from)
    }

    /// Inserts a quest and its objectives in one transaction. With an
    /// idempotency key, the key is stored in the same transaction, and a
    /// repeat returns the quest the first request created.
    pub async fn create(
        &self,
        new: &NewQuest,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> QuestResult<Created<Quest>> {
        let fingerprint = new.fingerprint();
        let key = idempotency_key.map(|key| (key, fingerprint.as_str()));
        create_or_replay(
            idempotency_key,
            |key| self.replay(key, &fingerprint),
            || self.insert(new, key, now_ms),
        )
        .await
    }

    /// The create transaction: the quest, its objectives and the key row.
    async fn insert(
        &self,
        new: &NewQuest,
        key: Option<(&str, &str)>,
        now_ms: i64,
    ) -> QuestResult<Inserted<Quest, QuestError>> {
        let txn = self.db.begin().await?;
        let row = quest::ActiveModel {
            title: Set(new.title.clone()),
            description: Set(new.description.clone()),
            giver_npc_id: Set(new.giver_npc_id),
            region_id: Set(new.region_id),
            level_requirement: Set(to_i32(new.level_requirement)),
            reward_gold: Set(new.reward.gold),
            reward_xp: Set(new.reward.xp),
            reward_item_ids: Set(encode_json(&new.reward.item_ids)),
            reward_standing: Set(new.reward.standing),
            reward_disposition: Set(new.reward.disposition),
            created_at_ms: Set(now_ms),
            updated_at_ms: Set(now_ms),
            ..Default::default()
        };
        let quest_row = quest::Entity::insert(row).exec_with_returning(&txn).await?;
        let objective_rows =
            objective::Entity::insert_many(new.objectives.iter().enumerate().map(|(i, o)| objective::ActiveModel {
                quest_id: Set(quest_row.id),
                position: Set(i as i32),
                description: Set(o.description.clone()),
                target_count: Set(to_i32(o.target_count)),
                ..Default::default()
            }))
            .exec_with_returning(&txn)
            .await?;

        if let Some((key, fingerprint)) = key {
            let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                quest_id: Set(quest_row.id),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                // A concurrent request with the same key may have won the
                // race: drop this quest (that request's result is the answer).
                return key_refused(txn, err).await;
            }
        }
        txn.commit().await?;

        let mut objective_rows = objective_rows;
        objective_rows.sort_by_key(|o| o.position);
        Ok(Inserted::Done(to_quest(quest_row, objective_rows)?))
    }

    /// Writes a changed quest definition (objectives are left as they are).
    /// Returns `false` when the quest no longer exists.
    pub async fn update(&self, quest: &Quest) -> QuestResult<bool> {
        let result = quest::Entity::update_many()
            .col_expr(quest::Column::Title, Expr::value(quest.title.clone()))
            .col_expr(quest::Column::Description, Expr::value(quest.description.clone()))
            .col_expr(quest::Column::GiverNpcId, Expr::value(quest.giver_npc_id))
            .col_expr(quest::Column::RegionId, Expr::value(quest.region_id))
            .col_expr(
                quest::Column::LevelRequirement,
                Expr::value(to_i32(quest.level_requirement)),
            )
            .col_expr(quest::Column::RewardGold, Expr::value(quest.reward.gold))
            .col_expr(quest::Column::RewardXp, Expr::value(quest.reward.xp))
            .col_expr(
                quest::Column::RewardItemIds,
                Expr::value(encode_json(&quest.reward.item_ids)),
            )
            .col_expr(quest::Column::RewardStanding, Expr::value(quest.reward.standing))
            .col_expr(quest::Column::RewardDisposition, Expr::value(quest.reward.disposition))
            .col_expr(quest::Column::UpdatedAtMs, Expr::value(quest.updated_at_ms))
            .filter(quest::Column::Id.eq(quest.id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes a quest, its objectives and every player's progress on it.
    /// Returns `false` when there was no such quest.
    pub async fn delete(&self, id: i64) -> QuestResult<bool> {
        let txn = self.db.begin().await?;
        player_quest::Entity::delete_many()
            .filter(player_quest::Column::QuestId.eq(id))
            .exec(&txn)
            .await?;
        objective::Entity::delete_many()
            .filter(objective::Column::QuestId.eq(id))
            .exec(&txn)
            .await?;
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::QuestId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = quest::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(deleted.rows_affected == 1)
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> QuestResult<Option<Quest>> {
        let Some(row) = idempotency_key::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        check_fingerprint(key, &row.fingerprint, fingerprint)?;
        match self.get(row.quest_id).await? {
            Some(quest) => Ok(Some(quest)),
            None => Err(QuestError::Corrupt(format!(
                "idempotency key {key:?} names missing quest {}",
                row.quest_id
            ))),
        }
    }

    /// Reads one quest with its objectives.
    pub async fn get(&self, id: i64) -> QuestResult<Option<Quest>> {
        Ok(self.get_many(&[id]).await?.pop())
    }

    /// Reads quests by id in two queries; unknown ids are left out and the
    /// order follows `ids`.
    pub async fn get_many(&self, ids: &[i64]) -> QuestResult<Vec<Quest>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = quest::Entity::find()
            .filter(quest::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        let mut quests = self.with_objectives(rows).await?;
        let order: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        quests.sort_by_key(|q| order.get(&q.id).copied().unwrap_or(usize::MAX));
        Ok(quests)
    }

    /// Reads one page of quests in id order.
    pub async fn list(&self, filter: QuestFilter, page: Page) -> QuestResult<(Vec<Quest>, Option<String>)> {
        let mut query = quest::Entity::find().filter(quest::Column::Id.gt(page.after_id()));
        if let Some(region_id) = filter.region_id {
            query = query.filter(quest::Column::RegionId.eq(region_id));
        }
        if let Some(giver) = filter.giver_npc_id {
            query = query.filter(quest::Column::GiverNpcId.eq(giver));
        }
        let rows = query
            .order_by_asc(quest::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        Ok((self.with_objectives(rows).await?, next))
    }

    async fn with_objectives(&self, rows: Vec<quest::Model>) -> QuestResult<Vec<Quest>> {
        let mut by_quest = self.objectives_of(rows.iter().map(|r| r.id)).await?;
        rows.into_iter()
            .map(|row| {
                let objectives = by_quest.remove(&row.id).unwrap_or_default();
                to_quest(row, objectives)
            })
            .collect()
    }

    async fn objectives_of(
        &self,
        quest_ids: impl Iterator<Item = i64>,
    ) -> QuestResult<HashMap<i64, Vec<objective::Model>>> {
        let ids: Vec<i64> = quest_ids.collect();
        let mut by_quest: HashMap<i64, Vec<objective::Model>> = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(by_quest);
        }
        let rows = objective::Entity::find()
            .filter(objective::Column::QuestId.is_in(ids))
            .order_by_asc(objective::Column::QuestId)
            .order_by_asc(objective::Column::Position)
            .all(&self.db)
            .await?;
        for row in rows {
            by_quest.entry(row.quest_id).or_default().push(row);
        }
        Ok(by_quest)
    }

    /// Reads a player's quest with its row version: one query, since the
    /// objectives' targets come from the quest's definition (which the
    /// caller holds, from the cache).
    pub async fn player_quest(&self, player_id: i64, quest: &Quest) -> QuestResult<Option<Versioned>> {
        let Some(row) = player_quest::Entity::find_by_id((player_id, quest.id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let version = row.version;
        Ok(Some(Versioned {
            quest: StoredPlayerQuest(row).with_definition(quest)?,
            version,
        }))
    }

    /// Writes a player quest if its row is still at `expected` (`None`: the
    /// row must not exist yet). Returns `false` when another writer got there
    /// first, so the caller can re-read and retry.
    ///
    /// `owed`, what a completion owes other services, is queued in the
    /// outbox in the same transaction: the completion and what it owes
    /// commit together or not at all.
    pub async fn save_player_quest(
        &self,
        pq: &PlayerQuest,
        expected: Option<i64>,
        owed: &[Delivery],
    ) -> QuestResult<bool> {
        if owed.is_empty() {
            return write_player_quest(&self.db, pq, expected).await;
        }
        let txn = self.db.begin().await?;
        if !write_player_quest(&txn, pq, expected).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        for delivery in owed {
            outbox::enqueue(&txn, delivery, pq.updated_at_ms).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Every quest of a player in quest id order, without their
    /// objectives' targets; `None` when the player has more than `max`.
    pub async fn all_player_quests(&self, player_id: i64, max: u64) -> QuestResult<Option<Vec<StoredPlayerQuest>>> {
        let rows = player_quest::Entity::find()
            .filter(player_quest::Column::PlayerId.eq(player_id))
            .order_by_asc(player_quest::Column::QuestId)
            .limit(max.saturating_add(1))
            .all(&self.db)
            .await?;
        if rows.len() as u64 > max {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().map(StoredPlayerQuest).collect()))
    }

    /// Reads one page of a player's quests in quest id order, without
    /// their objectives' targets ([`StoredPlayerQuest::with_definition`]).
    pub async fn list_player_quests(
        &self,
        player_id: i64,
        status: Option<QuestStatus>,
        page: Page,
    ) -> QuestResult<(Vec<StoredPlayerQuest>, Option<String>)> {
        let mut query = player_quest::Entity::find()
            .filter(player_quest::Column::PlayerId.eq(player_id))
            .filter(player_quest::Column::QuestId.gt(page.after_id()));
        if let Some(status) = status {
            query = query.filter(player_quest::Column::Status.eq(status.as_str()));
        }
        let rows = query
            .order_by_asc(player_quest::Column::QuestId)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.quest_id);
        Ok((rows.into_iter().map(StoredPlayerQuest).collect(), next))
    }
}

/// The player quest write of [`QuestStore::save_player_quest`], on `conn`.
async fn write_player_quest(conn: &impl ConnectionTrait, pq: &PlayerQuest, expected: Option<i64>) -> QuestResult<bool> {
    let progress = progress_json(pq);
    match expected {
        None => {
            let inserted = player_quest::Entity::insert(player_quest::ActiveModel {
                player_id: Set(pq.player_id),
                quest_id: Set(pq.quest_id),
                status: Set(pq.status.as_str().to_owned()),
                accepted_at_ms: Set(pq.accepted_at_ms),
                updated_at_ms: Set(pq.updated_at_ms),
                completed_at_ms: Set(pq.completed_at_ms),
                progress: Set(progress),
                version: Set(1),
            })
            .exec_without_returning(conn)
            .await;
            match inserted {
                Ok(_) => Ok(true),
                Err(err) if is_unique_violation(&err) => Ok(false),
                // The quest was deleted after its definition was read.
                Err(err) if matches!(err.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => {
                    Err(QuestError::QuestNotFound(pq.quest_id))
                }
                Err(err) => Err(err.into()),
            }
        }
        Some(version) => {
            let result = player_quest::Entity::update_many()
                .col_expr(player_quest::Column::Status, Expr::value(pq.status.as_str()))
                .col_expr(player_quest::Column::AcceptedAtMs, Expr::value(pq.accepted_at_ms))
                .col_expr(player_quest::Column::UpdatedAtMs, Expr::value(pq.updated_at_ms))
                .col_expr(player_quest::Column::CompletedAtMs, Expr::value(pq.completed_at_ms))
                .col_expr(player_quest::Column::Progress, Expr::value(progress))
                .col_expr(player_quest::Column::Version, Expr::value(version + 1))
                .filter(player_quest::Column::PlayerId.eq(pq.player_id))
                .filter(player_quest::Column::QuestId.eq(pq.quest_id))
                .filter(player_quest::Column::Version.eq(version))
                .exec(conn)
                .await?;
            Ok(result.rows_affected == 1)
        }
    }
}

fn to_quest(row: quest::Model, objectives: Vec<objective::Model>) -> QuestResult<Quest> {
    Ok(Quest {
        id: row.id,
        title: row.title,
        description: row.description,
        giver_npc_id: row.giver_npc_id,
        region_id: row.region_id,
        level_requirement: to_u32(row.level_requirement),
        reward: Reward {
            gold: row.reward_gold,
            xp: row.reward_xp,
            item_ids: decode_json(&row.reward_item_ids)?,
            standing: row.reward_standing,
            disposition: row.reward_disposition,
        },
        objectives: objectives
            .into_iter()
            .map(|o| Objective {
                id: o.id,
                description: o.description,
                target_count: to_u32(o.target_count),
            })
            .collect(),
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}

/// A player quest row with its objectives' `(id, target_count)`, in order.
fn to_player_quest(row: player_quest::Model, objectives: impl Iterator<Item = (i64, u32)>) -> QuestResult<PlayerQuest> {
    let status = QuestStatus::parse(&row.status)
        .ok_or_else(|| QuestError::Corrupt(format!("unknown status {:?}", row.status)))?;
    let progress: HashMap<i64, u32> = decode_json::<Vec<(i64, u32)>>(&row.progress)?.into_iter().collect();
    Ok(PlayerQuest {
        player_id: row.player_id,
        quest_id: row.quest_id,
        status,
        accepted_at_ms: row.accepted_at_ms,
        updated_at_ms: row.updated_at_ms,
        completed_at_ms: row.completed_at_ms,
        objectives: objectives
            .map(|(objective_id, target_count)| ObjectiveProgress {
                objective_id,
                progress: progress.get(&objective_id).copied().unwrap_or(0),
                target_count,
            })
            .collect(),
    })
}

/// A player quest's progress as stored: `[objective_id, progress]` pairs.
fn progress_json(pq: &PlayerQuest) -> String {
    encode_json(
        &pq.objectives
            .iter()
            .map(|o| (o.objective_id, o.progress))
            .collect::<Vec<_>>(),
    )
}

fn encode_json<T: serde::Serialize>(value: &T) -> String {
    // Vectors of integers always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_json<T: serde::de::DeserializeOwned>(raw: &str) -> QuestResult<T> {
    serde_json::from_str(raw).map_err(|e| QuestError::Corrupt(format!("stored JSON {raw:?}: {e}")))
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}
