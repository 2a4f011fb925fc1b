//! Reading and writing the NPC tables. Batch reads take one query whatever
//! the number of ids (no N+1).

pub mod entities;
pub mod migration;

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, JoinType, QueryFilter,
    QueryOrder, QuerySelect, RelationDef, TransactionTrait,
};

use vdm_kit::idempotency::{Inserted, check_fingerprint, is_unique_violation, key_refused};

use self::entities::{disposition, disposition_key, idempotency_key, memory, npc};
use crate::domain::{
    Disposition, Hex, Memory, MemoryRank, NewMemory, Npc, NpcPatch, Order, Page, Traits, memories_to_drop,
};
use crate::error::{NpcError, NpcResult};

/// A player's disposition with an NPC, and the region that NPC is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedDisposition {
    /// The disposition.
    pub disposition: Disposition,
    /// The region its NPC was in when it was read.
    pub region_id: i64,
}

/// Filters of an NPC listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NpcFilter {
    /// Only NPCs in this region.
    pub region_id: Option<i64>,
    /// Only NPCs of this faction.
    pub faction_id: Option<i64>,
}

/// An NPC ready to insert: validated, with its world checks passed.
#[derive(Debug, Clone)]
pub struct NpcRow {
    /// Display name.
    pub name: String,
    /// Its region.
    pub region_id: i64,
    /// Its cell, which the region owns.
    pub position: Hex,
    /// Its faction, which exists.
    pub faction_id: Option<i64>,
    /// Its personality.
    pub traits: Traits,
}

/// What a memory record did.
#[derive(Debug)]
pub struct Recorded {
    /// The memory (new, or the earlier one with the same key).
    pub memory: Memory,
    /// True when an earlier request with the same key recorded it.
    pub replayed: bool,
    /// Memories dropped to stay within the cap (may include this one).
    pub dropped_ids: Vec<i64>,
}

/// What a disposition change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjusted {
    /// The disposition now.
    pub disposition: Disposition,
    /// True when its idempotency key was applied before: nothing changed.
    pub replayed: bool,
}

/// The NPC tables behind one database pool.
#[derive(Clone)]
pub struct NpcStore {
    db: DatabaseConnection,
}

impl NpcStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> NpcStore {
        NpcStore { db }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> NpcResult<()> {
        self.db.ping().await.map_err(NpcError::from)
    }

    /// The NPC an earlier create with this key made, if any; an error when
    /// the key was used for a different request.
    pub async fn replay(&self, key: &str, fingerprint: &str) -> NpcResult<Option<Npc>> {
        let Some(row) = idempotency_key::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        check_fingerprint(key, &row.fingerprint, fingerprint)?;
        match self.get(row.npc_id).await? {
            Some(npc) => Ok(Some(npc)),
            None => Err(NpcError::Corrupt(format!(
                "idempotency key {key:?} names missing npc {}",
                row.npc_id
            ))),
        }
    }

    /// Inserts an NPC. With an idempotency key (and the request's
    /// fingerprint), the key is stored in the same transaction; a concurrent
    /// request that stored the same key first makes this one roll back.
    pub async fn insert(
        &self,
        new: &NpcRow,
        idempotency_key: Option<(&str, &str)>,
        now_ms: i64,
    ) -> NpcResult<Inserted<Npc, NpcError>> {
        let txn = self.db.begin().await?;
        let row = npc::Entity::insert(npc::ActiveModel {
            name: Set(new.name.clone()),
            region_id: Set(new.region_id),
            q: Set(new.position.q),
            r: Set(new.position.r),
            faction_id: Set(new.faction_id),
            gullibility: Set(new.traits.gullibility),
            talkativeness: Set(new.traits.talkativeness),
            honesty: Set(new.traits.honesty),
            created_at_ms: Set(now_ms),
            updated_at_ms: Set(now_ms),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        if let Some((key, fingerprint)) = idempotency_key {
            let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                npc_id: Set(row.id),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                // A concurrent request with the same key may have won the
                // race: drop this NPC (that request's result is the answer).
                return key_refused(txn, err).await;
            }
        }
        txn.commit().await?;
        Ok(Inserted::Done(Npc::from(row)))
    }

    /// Reads one NPC.
    pub async fn get(&self, id: i64) -> NpcResult<Option<Npc>> {
        Ok(npc::Entity::find_by_id(id).one(&self.db).await?.map(Npc::from))
    }

    /// Reads NPCs by id in one query; unknown ids are left out and the
    /// order follows `ids`.
    pub async fn get_many(&self, ids: &[i64]) -> NpcResult<Vec<Npc>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut npcs: Vec<Npc> = npc::Entity::find()
            .filter(npc::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Npc::from)
            .collect();
        let order: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        npcs.sort_by_key(|n| order.get(&n.id).copied().unwrap_or(usize::MAX));
        Ok(npcs)
    }

    /// Reads one page of NPCs in id order.
    pub async fn list(&self, filter: NpcFilter, page: Page) -> NpcResult<(Vec<Npc>, Option<String>)> {
        let mut query = npc::Entity::find();
        if let Some(after) = page.from_id {
            query = query.filter(npc::Column::Id.gt(after));
        }
        if let Some(region_id) = filter.region_id {
            query = query.filter(npc::Column::RegionId.eq(region_id));
        }
        if let Some(faction_id) = filter.faction_id {
            query = query.filter(npc::Column::FactionId.eq(faction_id));
        }
        let rows = query
            .order_by_asc(npc::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        Ok((rows.into_iter().map(Npc::from).collect(), next))
    }

    /// Moves an NPC; `None` when it does not exist.
    pub async fn move_to(&self, id: i64, region_id: i64, to: Hex, now_ms: i64) -> NpcResult<Option<Npc>> {
        let result = npc::Entity::update_many()
            .col_expr(npc::Column::RegionId, Expr::value(region_id))
            .col_expr(npc::Column::Q, Expr::value(to.q))
            .col_expr(npc::Column::R, Expr::value(to.r))
            .col_expr(npc::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(npc::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Ok(None);
        }
        self.get(id).await
    }

    /// Writes the fields a patch gives; `None` when the NPC does not exist.
    pub async fn update(&self, id: i64, patch: &NpcPatch, now_ms: i64) -> NpcResult<Option<Npc>> {
        let mut update = npc::Entity::update_many().col_expr(npc::Column::UpdatedAtMs, Expr::value(now_ms));
        if let Some(name) = &patch.name {
            update = update.col_expr(npc::Column::Name, Expr::value(name.clone()));
        }
        if let Some(faction_id) = patch.faction_id {
            update = update.col_expr(npc::Column::FactionId, Expr::value(faction_id));
        }
        if let Some(traits) = patch.traits {
            update = update
                .col_expr(npc::Column::Gullibility, Expr::value(traits.gullibility))
                .col_expr(npc::Column::Talkativeness, Expr::value(traits.talkativeness))
                .col_expr(npc::Column::Honesty, Expr::value(traits.honesty));
        }
        let result = update.filter(npc::Column::Id.eq(id)).exec(&self.db).await?;
        if result.rows_affected == 0 {
            return Ok(None);
        }
        self.get(id).await
    }

    /// Takes the NPC's row lock (Postgres) or the database write lock
    /// (SQLite) with a no-op write, as the first statement of `txn`, so
    /// read-modify-writes on one NPC queue instead of racing and SQLite
    /// never upgrades a read transaction. `false` when the NPC does not exist.
    async fn lock_npc(txn: &DatabaseTransaction, id: i64) -> NpcResult<bool> {
        let locked = npc::Entity::update_many()
            .col_expr(npc::Column::UpdatedAtMs, Expr::col(npc::Column::UpdatedAtMs))
            .filter(npc::Column::Id.eq(id))
            .exec(txn)
            .await?;
        Ok(locked.rows_affected == 1)
    }

    /// A player's stored disposition with an NPC.
    pub async fn disposition(&self, npc_id: i64, player_id: i64) -> NpcResult<Option<Disposition>> {
        Ok(disposition::Entity::find_by_id((player_id, npc_id))
            .one(&self.db)
            .await?
            .map(Disposition::from))
    }

    /// Sets a player's disposition with an NPC to `change(current)` in one
    /// transaction holding the NPC's lock, so concurrent adjustments add up.
    ///
    /// With `key` (an idempotency key and the request's fingerprint), the
    /// key is stored in the same transaction, so a change and its key
    /// commit together; a key stored already makes this a replay: the
    /// current disposition is returned and nothing changes (a different
    /// fingerprint is [`NpcError::IdempotencyConflict`]).
    pub async fn change_disposition(
        &self,
        npc_id: i64,
        player_id: i64,
        change: impl Fn(i32) -> NpcResult<i32>,
        key: Option<(&str, &str)>,
        now_ms: i64,
    ) -> NpcResult<Adjusted> {
        // A second round only after losing a race for the key (another NPC's
        // transaction stored it first): that round finds the key.
        for _ in 0..2 {
            if let Some(adjusted) = self
                .try_change_disposition(npc_id, player_id, &change, key, now_ms)
                .await?
            {
                return Ok(adjusted);
            }
        }
        Err(NpcError::Contended("disposition key"))
    }

    /// One round of [`NpcStore::change_disposition`]; `None` when a
    /// concurrent request stored the same key first.
    async fn try_change_disposition(
        &self,
        npc_id: i64,
        player_id: i64,
        change: &impl Fn(i32) -> NpcResult<i32>,
        key: Option<(&str, &str)>,
        now_ms: i64,
    ) -> NpcResult<Option<Adjusted>> {
        let txn = self.db.begin().await?;
        if !Self::lock_npc(&txn, npc_id).await? {
            txn.rollback().await?;
            return Err(NpcError::NpcNotFound(npc_id));
        }
        let stored = disposition::Entity::find_by_id((player_id, npc_id)).one(&txn).await?;
        if let Some((key, fingerprint)) = key
            && let Some(applied) = disposition_key::Entity::find_by_id(key.to_owned()).one(&txn).await?
        {
            txn.rollback().await?;
            check_fingerprint(key, &applied.fingerprint, fingerprint)?;
            let disposition = stored.map(Disposition::from).unwrap_or(Disposition {
                npc_id,
                player_id,
                score: 0,
                updated_at_ms: 0,
            });
            return Ok(Some(Adjusted {
                disposition,
                replayed: true,
            }));
        }
        let current = stored.map(|d| d.score).unwrap_or(0);
        let score = match change(current) {
            Ok(score) => score,
            Err(err) => {
                txn.rollback().await?;
                return Err(err);
            }
        };
        disposition::Entity::insert(disposition::ActiveModel {
            player_id: Set(player_id),
            npc_id: Set(npc_id),
            score: Set(score),
            updated_at_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::columns([disposition::Column::PlayerId, disposition::Column::NpcId])
                .update_columns([disposition::Column::Score, disposition::Column::UpdatedAtMs])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if let Some((key, fingerprint)) = key {
            let stored_key = disposition_key::Entity::insert(disposition_key::ActiveModel {
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                npc_id: Set(npc_id),
                player_id: Set(player_id),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = stored_key {
                txn.rollback().await?;
                // Another NPC's change stored this key first (changes of one
                // NPC queue on its lock and find the key instead).
                return if is_unique_violation(&err) {
                    Ok(None)
                } else {
                    Err(err.into())
                };
            }
        }
        txn.commit().await?;
        Ok(Some(Adjusted {
            disposition: Disposition {
                npc_id,
                player_id,
                score,
                updated_at_ms: now_ms,
            },
            replayed: false,
        }))
    }

    /// A player's dispositions with NPCs by id (two queries): every known
    /// NPC, with 0 where never adjusted, in the order of `npc_ids`.
    pub async fn dispositions_of(&self, player_id: i64, npc_ids: &[i64]) -> NpcResult<Vec<Disposition>> {
        if npc_ids.is_empty() {
            return Ok(Vec::new());
        }
        let known: Vec<i64> = npc::Entity::find()
            .select_only()
            .column(npc::Column::Id)
            .filter(npc::Column::Id.is_in(npc_ids.iter().copied()))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?;
        let stored: HashMap<i64, Disposition> = disposition::Entity::find()
            .filter(disposition::Column::PlayerId.eq(player_id))
            .filter(disposition::Column::NpcId.is_in(known.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|d| (d.npc_id, Disposition::from(d)))
            .collect();
        let known: std::collections::HashSet<i64> = known.into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        Ok(npc_ids
            .iter()
            .filter(|id| known.contains(id) && seen.insert(**id))
            .map(|id| {
                stored.get(id).copied().unwrap_or(Disposition {
                    npc_id: *id,
                    player_id,
                    score: 0,
                    updated_at_ms: 0,
                })
            })
            .collect())
    }

    /// Every disposition a player has (the adjusted ones), each with the
    /// region its NPC is in now, in NPC id order (one query); `None` when
    /// there are more than `max`.
    pub async fn placed_dispositions(&self, player_id: i64, max: u64) -> NpcResult<Option<Vec<PlacedDisposition>>> {
        let of_npc: RelationDef = disposition::Entity::belongs_to(npc::Entity)
            .from(disposition::Column::NpcId)
            .to(npc::Column::Id)
            .into();
        let rows: Vec<(i64, i32, i64, i64)> = disposition::Entity::find()
            .select_only()
            .column(disposition::Column::NpcId)
            .column(disposition::Column::Score)
            .column(disposition::Column::UpdatedAtMs)
            .column(npc::Column::RegionId)
            .join(JoinType::InnerJoin, of_npc)
            .filter(disposition::Column::PlayerId.eq(player_id))
            .order_by_asc(disposition::Column::NpcId)
            .limit(max.saturating_add(1))
            .into_tuple()
            .all(&self.db)
            .await?;
        if rows.len() as u64 > max {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .map(|(npc_id, score, updated_at_ms, region_id)| PlacedDisposition {
                    disposition: Disposition {
                        npc_id,
                        player_id,
                        score,
                        updated_at_ms,
                    },
                    region_id,
                })
                .collect(),
        ))
    }

    /// A player's adjusted dispositions with the NPCs now in a region (one
    /// query), in NPC id order.
    pub async fn dispositions_in_region(&self, player_id: i64, region_id: i64) -> NpcResult<Vec<Disposition>> {
        Ok(disposition::Entity::find()
            .filter(disposition::Column::PlayerId.eq(player_id))
            .filter(
                disposition::Column::NpcId.in_subquery(
                    Query::select()
                        .column(npc::Column::Id)
                        .from(npc::Entity)
                        .and_where(npc::Column::RegionId.eq(region_id))
                        .to_owned(),
                ),
            )
            .order_by_asc(disposition::Column::NpcId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Disposition::from)
            .collect())
    }

    /// Records a memory and forgets what the cap asks, in one transaction
    /// holding the NPC's lock (so concurrent records evict in turn). With
    /// an idempotency key, a repeat returns the memory recorded first while
    /// it is kept.
    pub async fn record_memory(
        &self,
        new: &NewMemory,
        game_time_ms: i64,
        idempotency_key: Option<&str>,
        cap: usize,
        now_ms: i64,
    ) -> NpcResult<Recorded> {
        let fingerprint = new.fingerprint();
        let txn = self.db.begin().await?;
        if !Self::lock_npc(&txn, new.npc_id).await? {
            txn.rollback().await?;
            return Err(NpcError::NpcNotFound(new.npc_id));
        }
        if let Some(key) = idempotency_key {
            let earlier = memory::Entity::find()
                .filter(memory::Column::NpcId.eq(new.npc_id))
                .filter(memory::Column::IdempotencyKey.eq(key))
                .one(&txn)
                .await?;
            if let Some(earlier) = earlier {
                txn.rollback().await?;
                if earlier.fingerprint.as_deref() != Some(fingerprint.as_str()) {
                    return Err(NpcError::IdempotencyConflict(key.to_owned()));
                }
                return Ok(Recorded {
                    memory: Memory::try_from(earlier)?,
                    replayed: true,
                    dropped_ids: Vec::new(),
                });
            }
        }
        let row = memory::Entity::insert(memory::ActiveModel {
            npc_id: Set(new.npc_id),
            kind: Set(new.kind.clone()),
            text: Set(new.text.clone()),
            subject_ids: Set(encode_ids(&new.subject_ids)),
            importance: Set(new.importance),
            game_time_ms: Set(game_time_ms),
            created_at_ms: Set(now_ms),
            idempotency_key: Set(idempotency_key.map(str::to_owned)),
            fingerprint: Set(idempotency_key.map(|_| fingerprint.clone())),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        let ranks: Vec<MemoryRank> = memory::Entity::find()
            .select_only()
            .column(memory::Column::Id)
            .column(memory::Column::Importance)
            .column(memory::Column::GameTimeMs)
            .filter(memory::Column::NpcId.eq(new.npc_id))
            .into_tuple::<(i64, f32, i64)>()
            .all(&txn)
            .await?
            .into_iter()
            .map(|(id, importance, game_time_ms)| MemoryRank {
                id,
                importance,
                game_time_ms,
            })
            .collect();
        let dropped_ids = memories_to_drop(&ranks, cap);
        if !dropped_ids.is_empty() {
            memory::Entity::delete_many()
                .filter(memory::Column::Id.is_in(dropped_ids.iter().copied()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(Recorded {
            memory: Memory::try_from(row)?,
            replayed: false,
            dropped_ids,
        })
    }

    /// Reads one page of an NPC's memories, newest first.
    pub async fn list_memories(&self, npc_id: i64, page: Page) -> NpcResult<(Vec<Memory>, Option<String>)> {
        let mut query = memory::Entity::find().filter(memory::Column::NpcId.eq(npc_id));
        if let Some(from) = page.from_id {
            query = match page.order {
                Order::Descending => query.filter(memory::Column::Id.lt(from)),
                Order::Ascending => query.filter(memory::Column::Id.gt(from)),
            };
        }
        query = match page.order {
            Order::Descending => query.order_by_desc(memory::Column::Id),
            Order::Ascending => query.order_by_asc(memory::Column::Id),
        };
        let rows = query.limit(u64::from(page.limit) + 1).all(&self.db).await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        let memories = rows.into_iter().map(Memory::try_from).collect::<NpcResult<Vec<_>>>()?;
        Ok((memories, next))
    }
}

impl From<npc::Model> for Npc {
    fn from(row: npc::Model) -> Npc {
        Npc {
            id: row.id,
            name: row.name,
            region_id: row.region_id,
            position: Hex::new(row.q, row.r),
            faction_id: row.faction_id,
            traits: Traits {
                gullibility: row.gullibility,
                talkativeness: row.talkativeness,
                honesty: row.honesty,
            },
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        }
    }
}

impl From<disposition::Model> for Disposition {
    fn from(row: disposition::Model) -> Disposition {
        Disposition {
            npc_id: row.npc_id,
            player_id: row.player_id,
            score: row.score,
            updated_at_ms: row.updated_at_ms,
        }
    }
}

impl TryFrom<memory::Model> for Memory {
    type Error = NpcError;

    fn try_from(row: memory::Model) -> Result<Memory, NpcError> {
        Ok(Memory {
            id: row.id,
            npc_id: row.npc_id,
            subject_ids: serde_json::from_str(&row.subject_ids)
                .map_err(|e| NpcError::Corrupt(format!("stored subject ids {:?}: {e}", row.subject_ids)))?,
            kind: row.kind,
            text: row.text,
            importance: row.importance,
            game_time_ms: row.game_time_ms,
            created_at_ms: row.created_at_ms,
        })
    }
}

fn encode_ids(ids: &[i64]) -> String {
    // Vectors of integers always serialize.
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}
