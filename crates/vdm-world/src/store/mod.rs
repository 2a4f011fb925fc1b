//! Reading and writing the world tables. Reads take a constant number of
//! queries (no N+1): a region with its cells and its neighbours in three, the
//! whole map in two, a page of events with their regions in two.

pub mod entities;
pub mod migration;

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use vdm_kit::idempotency::{Inserted, check_fingerprint, create_or_replay, is_unique_violation};

use self::entities::{clock, event, event_region, faction, faction_relation, idempotency_key, region, region_cell};
use crate::domain::{
    BoundingBox, Clock, Faction, FactionRelation, Hex, NewEvent, NewRegion, Page, Region, WorldEvent, neighbor_ids,
};
use crate::error::{WorldError, WorldResult};

/// Rows per multi-row insert, well under every backend's bind limit.
const INSERT_CHUNK: usize = 1_000;

pub use vdm_kit::idempotency::Created;

/// The world tables behind one database pool.
#[derive(Clone)]
pub struct WorldStore {
    db: DatabaseConnection,
}

impl WorldStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> WorldStore {
        WorldStore { db }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> WorldResult<()> {
        self.db.ping().await.map_err(WorldError::from)
    }

    // ---- regions ----

    /// Reads every region with its cells and neighbours (two queries).
    pub async fn list_regions(&self) -> WorldResult<Vec<Region>> {
        let rows = region::Entity::find()
            .order_by_asc(region::Column::Id)
            .all(&self.db)
            .await?;
        let cells = region_cell::Entity::find()
            .order_by_asc(region_cell::Column::Q)
            .order_by_asc(region_cell::Column::R)
            .all(&self.db)
            .await?;
        let owners: HashMap<Hex, i64> = cells.iter().map(|c| (Hex::new(c.q, c.r), c.region_id)).collect();
        let mut by_region: HashMap<i64, Vec<Hex>> = HashMap::with_capacity(rows.len());
        for cell in &cells {
            by_region
                .entry(cell.region_id)
                .or_default()
                .push(Hex::new(cell.q, cell.r));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let cells = by_region.remove(&row.id).unwrap_or_default();
                let neighbors = neighbor_ids(row.id, &cells, &owners);
                to_region(row, cells, neighbors)
            })
            .collect())
    }

    /// Reads one region with its cells and neighbours (three queries).
    pub async fn get_region(&self, id: i64) -> WorldResult<Option<Region>> {
        let Some(row) = region::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let cells: Vec<Hex> = region_cell::Entity::find()
            .filter(region_cell::Column::RegionId.eq(id))
            .order_by_asc(region_cell::Column::Q)
            .order_by_asc(region_cell::Column::R)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| Hex::new(c.q, c.r))
            .collect();
        let owners = match BoundingBox::around(&cells, 1) {
            Some(area) => self
                .cells_in(&self.db, area, id)
                .await?
                .into_iter()
                .map(|c| (Hex::new(c.q, c.r), c.region_id))
                .collect(),
            None => HashMap::new(),
        };
        let neighbors = neighbor_ids(id, &cells, &owners);
        Ok(Some(to_region(row, cells, neighbors)))
    }

    /// The id of the region holding `hex`, if any.
    pub async fn region_id_at(&self, hex: Hex) -> WorldResult<Option<i64>> {
        Ok(region_cell::Entity::find_by_id((hex.q, hex.r))
            .one(&self.db)
            .await?
            .map(|c| c.region_id))
    }

    /// The first of `ids` that names no region.
    pub async fn first_unknown_region(&self, ids: &[i64]) -> WorldResult<Option<i64>> {
        let found: HashSet<i64> = region::Entity::find()
            .select_only()
            .column(region::Column::Id)
            .filter(region::Column::Id.is_in(ids.iter().copied()))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        Ok(ids.iter().copied().find(|id| !found.contains(id)))
    }

    /// Creates or replaces a region and its cells in one transaction.
    /// Returns whether it was created. Fails with [`WorldError::CellTaken`]
    /// when another region owns one of the cells.
    pub async fn upsert_region(&self, new: &NewRegion, now_ms: i64) -> WorldResult<bool> {
        let txn = self.db.begin().await?;
        // A write first: it takes the region's row lock (Postgres) or the
        // database write lock (SQLite) before any read, so SQLite never has
        // to upgrade a read transaction.
        let updated = region::Entity::update_many()
            .col_expr(region::Column::Name, Expr::value(new.name.clone()))
            .col_expr(region::Column::Biome, Expr::value(new.biome.clone()))
            .col_expr(region::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(region::Column::Id.eq(new.id))
            .exec(&txn)
            .await?;
        let created = updated.rows_affected == 0;
        if created {
            let inserted = region::Entity::insert(region::ActiveModel {
                id: Set(new.id),
                name: Set(new.name.clone()),
                biome: Set(new.biome.clone()),
                created_at_ms: Set(now_ms),
                updated_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "region"));
            }
        }
        let wanted: HashSet<Hex> = new.cells.iter().copied().collect();
        if let Some(area) = BoundingBox::around(&new.cells, 0) {
            let taken = self
                .cells_in(&txn, area, new.id)
                .await?
                .into_iter()
                .find(|c| wanted.contains(&Hex::new(c.q, c.r)));
            if let Some(cell) = taken {
                txn.rollback().await?;
                return Err(WorldError::CellTaken {
                    hex: Hex::new(cell.q, cell.r),
                    owner: cell.region_id,
                });
            }
        }
        region_cell::Entity::delete_many()
            .filter(region_cell::Column::RegionId.eq(new.id))
            .exec(&txn)
            .await?;
        for chunk in new.cells.chunks(INSERT_CHUNK) {
            let inserted = region_cell::Entity::insert_many(chunk.iter().map(|c| region_cell::ActiveModel {
                q: Set(c.q),
                r: Set(c.r),
                region_id: Set(new.id),
            }))
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "cells"));
            }
        }
        txn.commit().await?;
        Ok(created)
    }

    /// Cells of regions other than `except` inside `area`.
    async fn cells_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        area: BoundingBox,
        except: i64,
    ) -> WorldResult<Vec<region_cell::Model>> {
        Ok(region_cell::Entity::find()
            .filter(region_cell::Column::Q.between(area.min_q, area.max_q))
            .filter(region_cell::Column::R.between(area.min_r, area.max_r))
            .filter(region_cell::Column::RegionId.ne(except))
            .all(conn)
            .await?)
    }

    // ---- factions ----

    /// Reads every faction in id order.
    pub async fn list_factions(&self) -> WorldResult<Vec<Faction>> {
        Ok(faction::Entity::find()
            .order_by_asc(faction::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|f| Faction { id: f.id, name: f.name })
            .collect())
    }

    /// Creates or renames a faction; returns whether it was created.
    pub async fn upsert_faction(&self, f: &Faction, now_ms: i64) -> WorldResult<bool> {
        let txn = self.db.begin().await?;
        let updated = faction::Entity::update_many()
            .col_expr(faction::Column::Name, Expr::value(f.name.clone()))
            .col_expr(faction::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(faction::Column::Id.eq(f.id))
            .exec(&txn)
            .await?;
        let created = updated.rows_affected == 0;
        if created {
            let inserted = faction::Entity::insert(faction::ActiveModel {
                id: Set(f.id),
                name: Set(f.name.clone()),
                created_at_ms: Set(now_ms),
                updated_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "faction"));
            }
        }
        txn.commit().await?;
        Ok(created)
    }

    /// Reads every stored relation (pairs never set are absent).
    pub async fn stored_relations(&self) -> WorldResult<Vec<FactionRelation>> {
        Ok(faction_relation::Entity::find()
            .order_by_asc(faction_relation::Column::FactionA)
            .order_by_asc(faction_relation::Column::FactionB)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| FactionRelation {
                faction_a: r.faction_a,
                faction_b: r.faction_b,
                score: r.score,
            })
            .collect())
    }

    /// Changes the score of the pair `(a, b)` (`a < b`, both existing) to
    /// `change(current score)`, in one transaction that holds both
    /// factions' rows, so concurrent adjustments add up.
    pub async fn change_relation(
        &self,
        (a, b): (i64, i64),
        change: impl FnOnce(i32) -> WorldResult<i32>,
        now_ms: i64,
    ) -> WorldResult<FactionRelation> {
        let txn = self.db.begin().await?;
        // A no-op write that locks both factions (and tells whether they exist).
        let locked = faction::Entity::update_many()
            .col_expr(faction::Column::UpdatedAtMs, Expr::col(faction::Column::UpdatedAtMs))
            .filter(faction::Column::Id.is_in([a, b]))
            .exec(&txn)
            .await?;
        if locked.rows_affected < 2 {
            let found: HashSet<i64> = faction::Entity::find()
                .filter(faction::Column::Id.is_in([a, b]))
                .all(&txn)
                .await?
                .into_iter()
                .map(|f| f.id)
                .collect();
            txn.rollback().await?;
            let missing = if found.contains(&a) { b } else { a };
            return Err(WorldError::FactionNotFound(missing));
        }
        let current = faction_relation::Entity::find_by_id((a, b))
            .one(&txn)
            .await?
            .map(|r| r.score)
            .unwrap_or(0);
        let score = match change(current) {
            Ok(score) => score,
            Err(err) => {
                txn.rollback().await?;
                return Err(err);
            }
        };
        faction_relation::Entity::insert(faction_relation::ActiveModel {
            faction_a: Set(a),
            faction_b: Set(b),
            score: Set(score),
            updated_at_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::columns([faction_relation::Column::FactionA, faction_relation::Column::FactionB])
                .update_columns([faction_relation::Column::Score, faction_relation::Column::UpdatedAtMs])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(FactionRelation {
            faction_a: a,
            faction_b: b,
            score,
        })
    }

    // ---- clock ----

    /// Reads the stored clock, storing `initial` first when there is none
    /// (the first start of the world).
    pub async fn load_clock(&self, initial: Clock) -> WorldResult<Clock> {
        clock::Entity::insert(clock::ActiveModel {
            id: Set(1),
            anchor_game_ms: Set(initial.anchor_game_ms),
            anchor_real_ms: Set(initial.anchor_real_ms),
            rate: Set(initial.rate),
        })
        .on_conflict(OnConflict::column(clock::Column::Id).do_nothing().to_owned())
        .exec_without_returning(&self.db)
        .await?;
        let row = clock::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .ok_or_else(|| WorldError::Corrupt("the world clock row is missing".to_owned()))?;
        Ok(Clock {
            anchor_game_ms: row.anchor_game_ms,
            anchor_real_ms: row.anchor_real_ms,
            rate: row.rate,
        })
    }

    /// Stores a new anchor and rate.
    pub async fn save_clock(&self, clock: Clock) -> WorldResult<()> {
        clock::Entity::update_many()
            .col_expr(clock::Column::AnchorGameMs, Expr::value(clock.anchor_game_ms))
            .col_expr(clock::Column::AnchorRealMs, Expr::value(clock.anchor_real_ms))
            .col_expr(clock::Column::Rate, Expr::value(clock.rate))
            .filter(clock::Column::Id.eq(1))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ---- events ----

    /// Inserts an event and its regions in one transaction. With an
    /// idempotency key, the key is stored in the same transaction, and a
    /// repeat returns the event the first request created.
    pub async fn publish_event(
        &self,
        new: &NewEvent,
        idempotency_key: Option<&str>,
        game_time_ms: i64,
        now_ms: i64,
    ) -> WorldResult<Created<WorldEvent>> {
        let fingerprint = new.fingerprint();
        let key = idempotency_key.map(|key| (key, fingerprint.as_str()));
        create_or_replay(
            idempotency_key,
            |key| self.replay(key, &fingerprint),
            || self.insert_event(new, key, game_time_ms, now_ms),
        )
        .await
    }

    /// The publish transaction: the event, its regions and the key row.
    async fn insert_event(
        &self,
        new: &NewEvent,
        key: Option<(&str, &str)>,
        game_time_ms: i64,
        now_ms: i64,
    ) -> WorldResult<Inserted<WorldEvent, WorldError>> {
        let txn = self.db.begin().await?;
        let row = event::Entity::insert(event::ActiveModel {
            kind: Set(new.kind.clone()),
            text: Set(new.text.clone()),
            game_time_ms: Set(game_time_ms),
            created_at_ms: Set(now_ms),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        event_region::Entity::insert_many(new.region_ids.iter().map(|region_id| event_region::ActiveModel {
            region_id: Set(*region_id),
            event_id: Set(row.id),
        }))
        .exec_without_returning(&txn)
        .await?;
        if let Some((key, fingerprint)) = key {
            let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                event_id: Set(row.id),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                // A concurrent request with the same key won the race: drop
                // this event (that request's result is the answer).
                txn.rollback().await?;
                let taken = is_unique_violation(&err);
                let err = WorldError::from(err);
                return if taken { Ok(Inserted::KeyTaken(err)) } else { Err(err) };
            }
        }
        txn.commit().await?;
        Ok(Inserted::Done(to_event(row, new.region_ids.clone())))
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> WorldResult<Option<WorldEvent>> {
        let Some(row) = idempotency_key::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        check_fingerprint(key, &row.fingerprint, fingerprint)?;
        let Some(event) = event::Entity::find_by_id(row.event_id).one(&self.db).await? else {
            return Err(WorldError::Corrupt(format!(
                "idempotency key {key:?} names missing event {}",
                row.event_id
            )));
        };
        Ok(self.with_regions(vec![event]).await?.pop())
    }

    /// Reads one page of events in id order, by region and since a real time.
    pub async fn list_events(
        &self,
        region_id: Option<i64>,
        since_ms: i64,
        page: Page,
    ) -> WorldResult<(Vec<WorldEvent>, Option<String>)> {
        let mut query = event::Entity::find().filter(event::Column::Id.gt(page.after_id()));
        if since_ms > 0 {
            query = query.filter(event::Column::CreatedAtMs.gte(since_ms));
        }
        if let Some(region_id) = region_id {
            query = query.filter(
                event::Column::Id.in_subquery(
                    Query::select()
                        .column(event_region::Column::EventId)
                        .from(event_region::Entity)
                        .and_where(event_region::Column::RegionId.eq(region_id))
                        .and_where(event_region::Column::EventId.gt(page.after_id()))
                        .to_owned(),
                ),
            );
        }
        let rows = query
            .order_by_asc(event::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        Ok((self.with_regions(rows).await?, next))
    }

    /// Reads one event with its regions.
    pub async fn get_event(&self, id: i64) -> WorldResult<Option<WorldEvent>> {
        let Some(row) = event::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(self.with_regions(vec![row]).await?.pop())
    }

    async fn with_regions(&self, rows: Vec<event::Model>) -> WorldResult<Vec<WorldEvent>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let links = event_region::Entity::find()
            .filter(event_region::Column::EventId.is_in(rows.iter().map(|r| r.id)))
            .order_by_asc(event_region::Column::EventId)
            .order_by_asc(event_region::Column::RegionId)
            .all(&self.db)
            .await?;
        let mut by_event: HashMap<i64, Vec<i64>> = HashMap::with_capacity(rows.len());
        for link in links {
            by_event.entry(link.event_id).or_default().push(link.region_id);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let regions = by_event.remove(&row.id).unwrap_or_default();
                to_event(row, regions)
            })
            .collect())
    }
}

/// A unique violation means a concurrent writer inserted the same key first.
fn contended_or(err: DbErr, what: &'static str) -> WorldError {
    if is_unique_violation(&err) {
        WorldError::Contended(what)
    } else {
        WorldError::from(err)
    }
}

fn to_region(row: region::Model, cells: Vec<Hex>, neighbor_ids: Vec<i64>) -> Region {
    Region {
        id: row.id,
        name: row.name,
        biome: row.biome,
        cells,
        neighbor_ids,
        updated_at_ms: row.updated_at_ms,
    }
}

fn to_event(row: event::Model, region_ids: Vec<i64>) -> WorldEvent {
    WorldEvent {
        id: row.id,
        kind: row.kind,
        text: row.text,
        region_ids,
        game_time_ms: row.game_time_ms,
        created_at_ms: row.created_at_ms,
    }
}
