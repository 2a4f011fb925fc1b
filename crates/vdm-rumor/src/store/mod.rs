//! Reading and writing the rumor tables. A tick reads and writes with a
//! fixed number of statements whatever the region's size (no N+1).

pub mod entities;
pub mod migration;

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, JoinType, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
};

use vdm_kit::idempotency::{Inserted, check_fingerprint, is_unique_violation};

use self::entities::{knowledge, lease, rumor, variant};
use crate::domain::{Holder, Known, NewRumor, Origin, Rumor, Variant};
use crate::error::{RumorError, RumorResult};

/// A rumor an NPC knows, as a talk weighs it: which variant the NPC would
/// retell, and which the player knows already.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct TalkCandidate {
    /// The rumor.
    pub rumor_id: i64,
    /// The NPC's variant.
    pub variant_id: i64,
    /// The rumor's region.
    pub region_id: i64,
    /// When the NPC heard it (Unix ms).
    pub since_ms: i64,
    /// The player's variant, when the player has heard the rumor.
    pub player_variant_id: Option<i64>,
}

/// A new variant ready to store: who told whom, and the listener's text.
#[derive(Debug, Clone)]
pub struct NewVariant {
    /// The rumor.
    pub rumor_id: i64,
    /// The rumor's region (for the listener's knowledge).
    pub region_id: i64,
    /// The variant it is retold from.
    pub parent_id: i64,
    /// Who tells.
    pub teller_npc_id: i64,
    /// Who hears.
    pub listener: Holder,
    /// The listener's text.
    pub text: String,
    /// Its distortion.
    pub distortion: f32,
    /// Its truth.
    pub truth: f32,
    /// What made the text.
    pub transformer: String,
}

/// What a telling did.
#[derive(Debug)]
pub enum Told {
    /// The listener learnt this new variant.
    New(Variant),
    /// The listener already knew the rumor, as this variant.
    AlreadyKnown(Variant),
}

/// What a player heard of one rumor (their `knowledge` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeardRumor {
    /// The player's variant.
    pub variant_id: i64,
    /// The rumor's region.
    pub region_id: i64,
    /// When they heard it (Unix ms).
    pub since_ms: i64,
}

/// Bytes of variant text (and a fixed cost per entry) the variant cache
/// holds at most.
const VARIANT_CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// What an entry costs apart from its strings.
const VARIANT_ENTRY_BYTES: u32 = 128;

/// The rumor tables behind one database pool.
#[derive(Clone)]
pub struct RumorStore {
    db: DatabaseConnection,
    /// Variants by id. A variant is written once and never changed or
    /// deleted, so an entry can never be stale: no event, TTL or drop is
    /// needed, and every replica may keep its own. It spares a talk the
    /// read of the text it tells (most talks retell a variant already told).
    variants: moka::future::Cache<i64, Variant>,
}

impl RumorStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> RumorStore {
        let variants = moka::future::Cache::builder()
            .max_capacity(VARIANT_CACHE_BYTES)
            .weigher(|_, v: &Variant| {
                let text = v.text.len() + v.transformer.len();
                VARIANT_ENTRY_BYTES.saturating_add(u32::try_from(text).unwrap_or(u32::MAX))
            })
            .build();
        RumorStore { db, variants }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> RumorResult<()> {
        self.db.ping().await.map_err(RumorError::from)
    }

    /// The rumor an earlier create with this key made, if any; an error when
    /// the key was used for a different request.
    pub async fn replay(&self, key: &str, fingerprint: &str) -> RumorResult<Option<Rumor>> {
        let Some(row) = rumor::Entity::find()
            .filter(rumor::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        check_fingerprint(key, row.fingerprint.as_deref().unwrap_or_default(), fingerprint)?;
        Ok(Some(self.with_count(row).await?))
    }

    /// Inserts a rumor (with its idempotency key and fingerprint), its
    /// first variant and the knowledge of it of the NPCs who know it from
    /// the start, in one transaction. A concurrent request that stored the
    /// same key first makes this one roll back.
    pub async fn insert(
        &self,
        new: &NewRumor,
        knowers: &[i64],
        idempotency_key: Option<(&str, &str)>,
        now_ms: i64,
    ) -> RumorResult<Inserted<Rumor, RumorError>> {
        let (origin_npc_id, origin_event_id) = match new.origin {
            Origin::Npc(id) => (Some(id), None),
            Origin::Event(id) => (None, Some(id)),
        };
        let txn = self.db.begin().await?;
        let inserted = rumor::Entity::insert(rumor::ActiveModel {
            text: Set(new.text.clone()),
            origin_npc_id: Set(origin_npc_id),
            origin_event_id: Set(origin_event_id),
            region_id: Set(new.region_id),
            truth: Set(new.truth),
            root_variant_id: Set(0),
            created_at_ms: Set(now_ms),
            idempotency_key: Set(idempotency_key.map(|(k, _)| k.to_owned())),
            fingerprint: Set(idempotency_key.map(|(_, f)| f.to_owned())),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(err) => {
                txn.rollback().await?;
                // A concurrent request with the same key won the race.
                let taken = idempotency_key.is_some() && is_unique_violation(&err);
                let err = RumorError::from(err);
                return if taken { Ok(Inserted::KeyTaken(err)) } else { Err(err) };
            }
        };
        let root = variant::Entity::insert(variant::ActiveModel {
            rumor_id: Set(row.id),
            parent_id: Set(None),
            teller_npc_id: Set(None),
            listener_kind: Set(None),
            listener_id: Set(None),
            text: Set(new.text.clone()),
            distortion: Set(0.0),
            truth: Set(new.truth),
            transformer: Set("origin".to_owned()),
            created_at_ms: Set(now_ms),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        rumor::Entity::update_many()
            .col_expr(rumor::Column::RootVariantId, Expr::value(root.id))
            .filter(rumor::Column::Id.eq(row.id))
            .exec(&txn)
            .await?;
        knowledge::Entity::insert_many(knowers.iter().map(|npc_id| knowledge::ActiveModel {
            holder_kind: Set("npc".to_owned()),
            holder_id: Set(*npc_id),
            rumor_id: Set(row.id),
            variant_id: Set(root.id),
            region_id: Set(new.region_id),
            since_ms: Set(now_ms),
        }))
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(Inserted::Done(to_rumor(
            rumor::Model {
                root_variant_id: root.id,
                ..row
            },
            1,
        )))
    }

    /// Reads one rumor with its variant count.
    pub async fn get(&self, id: i64) -> RumorResult<Option<Rumor>> {
        match rumor::Entity::find_by_id(id).one(&self.db).await? {
            Some(row) => Ok(Some(self.with_count(row).await?)),
            None => Ok(None),
        }
    }

    async fn with_count(&self, row: rumor::Model) -> RumorResult<Rumor> {
        let count = variant::Entity::find()
            .filter(variant::Column::RumorId.eq(row.id))
            .count(&self.db)
            .await?;
        Ok(to_rumor(row, count as i64))
    }

    /// Reads rumors by id in one query (their `variant_count` is 0: only
    /// [`RumorStore::get`] counts).
    pub async fn rumors(&self, ids: &[i64]) -> RumorResult<HashMap<i64, Rumor>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(rumor::Entity::find()
            .filter(rumor::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.id, to_rumor(row, 0)))
            .collect())
    }

    /// Reads variants by id in one query.
    pub async fn variants(&self, ids: &[i64]) -> RumorResult<HashMap<i64, Variant>> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for &id in ids {
            match self.variants.get(&id).await {
                Some(variant) => {
                    found.insert(id, variant);
                }
                None => missing.push(id),
            }
        }
        record_variant_reads("hit", ids.len() - missing.len());
        if missing.is_empty() {
            return Ok(found);
        }
        record_variant_reads("miss", missing.len());
        let rows = variant::Entity::find()
            .filter(variant::Column::Id.is_in(missing))
            .all(&self.db)
            .await?;
        for row in rows {
            let variant = Variant::try_from(row)?;
            self.variants.insert(variant.id, variant.clone()).await;
            found.insert(variant.id, variant);
        }
        Ok(found)
    }

    /// The variant of a rumor someone knows, if they know it.
    pub async fn known_variant(&self, holder: Holder, rumor_id: i64) -> RumorResult<Option<Variant>> {
        let Some(row) = knowledge::Entity::find_by_id((holder.kind().to_owned(), holder.id(), rumor_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(self.variants(&[row.variant_id]).await?.remove(&row.variant_id))
    }

    /// Stores one telling: the new variant and the listener's knowledge, in
    /// one transaction. When the listener learnt the rumor meanwhile (a
    /// concurrent telling), nothing is stored and that variant is returned.
    pub async fn tell(&self, new: &NewVariant, now_ms: i64) -> RumorResult<Told> {
        let txn = self.db.begin().await?;
        let row = variant::Entity::insert(variant_row(new, now_ms))
            .exec_with_returning(&txn)
            .await?;
        let learnt = knowledge::Entity::insert(knowledge_row(new, row.id, now_ms))
            .on_conflict_do_nothing_on([
                knowledge::Column::HolderKind,
                knowledge::Column::HolderId,
                knowledge::Column::RumorId,
            ])
            .exec_without_returning(&txn)
            .await?;
        match learnt {
            TryInsertResult::Inserted(n) if n > 0 => {
                txn.commit().await?;
                Ok(Told::New(Variant::try_from(row)?))
            }
            _ => {
                txn.rollback().await?;
                match self.known_variant(new.listener, new.rumor_id).await? {
                    Some(variant) => Ok(Told::AlreadyKnown(variant)),
                    None => Err(RumorError::Db(sea_orm::DbErr::RecordNotInserted)),
                }
            }
        }
    }

    /// Stores a tick's tellings: every variant in one insert, every
    /// listener's knowledge in another, in one transaction. Listeners who
    /// learnt the rumor meanwhile keep what they knew. Returns how many
    /// listeners learnt something.
    pub async fn tell_many(&self, tellings: &[NewVariant], now_ms: i64) -> RumorResult<u64> {
        if tellings.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        let rows = variant::Entity::insert_many(tellings.iter().map(|t| variant_row(t, now_ms)))
            .exec_with_returning(&txn)
            .await?;
        // RETURNING gives the rows in insert order on both back ends; match
        // them by listener and rumor all the same.
        let ids: HashMap<(Option<i64>, i64), i64> = rows.iter().map(|r| ((r.listener_id, r.rumor_id), r.id)).collect();
        let learnt = knowledge::Entity::insert_many(tellings.iter().filter_map(|t| {
            ids.get(&(Some(t.listener.id()), t.rumor_id))
                .map(|id| knowledge_row(t, *id, now_ms))
        }))
        .on_conflict(
            OnConflict::columns([
                knowledge::Column::HolderKind,
                knowledge::Column::HolderId,
                knowledge::Column::RumorId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await;
        let learnt = match learnt {
            Ok(n) => n,
            // Every listener learnt it meanwhile.
            Err(sea_orm::DbErr::RecordNotInserted) => 0,
            Err(err) => return Err(err.into()),
        };
        txn.commit().await?;
        Ok(learnt)
    }

    /// What a holder knows, newest rumor first: one page, optionally only
    /// rumors of one region, each row read with its variant (one query).
    pub async fn list_known(
        &self,
        holder: Holder,
        region_id: Option<i64>,
        page: vdm_kit::page::Page,
    ) -> RumorResult<(Vec<Known>, Option<String>)> {
        let mut query = knowledge::Entity::find()
            .filter(knowledge::Column::HolderKind.eq(holder.kind()))
            .filter(knowledge::Column::HolderId.eq(holder.id()));
        if let Some(before) = page.from_id {
            // Newest first: the cursor's id is where the last page stopped.
            query = query.filter(knowledge::Column::RumorId.lt(before));
        }
        if let Some(region_id) = region_id {
            query = query.filter(knowledge::Column::RegionId.eq(region_id));
        }
        let rows = query
            .order_by_desc(knowledge::Column::RumorId)
            .limit(u64::from(page.limit) + 1)
            .find_also_related(variant::Entity)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |(row, _)| row.rumor_id);
        let mut known = Vec::with_capacity(rows.len());
        for (row, variant) in rows {
            // Variants are never deleted: a row without one is left out
            // rather than failing the page.
            if let Some(variant) = variant {
                known.push(Known {
                    variant: Variant::try_from(variant)?,
                    region_id: row.region_id,
                    since_ms: row.since_ms,
                });
            }
        }
        Ok((known, next))
    }

    /// What an NPC could tell a player: the newest rumors the NPC knows (at
    /// most `limit`), each with the variant the player knows of it, if any.
    /// One query, and no variant text: a talk reads only the one or two
    /// variants it tells.
    pub async fn talk_candidates(&self, npc_id: i64, player_id: i64, limit: u64) -> RumorResult<Vec<TalkCandidate>> {
        let (npc, player) = (Alias::new("npc"), Alias::new("player"));
        let query = Query::select()
            .column((npc.clone(), knowledge::Column::RumorId))
            .column((npc.clone(), knowledge::Column::VariantId))
            .column((npc.clone(), knowledge::Column::RegionId))
            .column((npc.clone(), knowledge::Column::SinceMs))
            .expr_as(
                Expr::col((player.clone(), knowledge::Column::VariantId)),
                Alias::new("player_variant_id"),
            )
            .from_as(knowledge::Entity, npc.clone())
            .join_as(
                JoinType::LeftJoin,
                knowledge::Entity,
                player.clone(),
                Condition::all()
                    .add(
                        Expr::col((player.clone(), knowledge::Column::HolderKind)).eq(Holder::Player(player_id).kind()),
                    )
                    .add(Expr::col((player.clone(), knowledge::Column::HolderId)).eq(player_id))
                    .add(
                        Expr::col((player.clone(), knowledge::Column::RumorId))
                            .equals((npc.clone(), knowledge::Column::RumorId)),
                    ),
            )
            .and_where(Expr::col((npc.clone(), knowledge::Column::HolderKind)).eq(Holder::Npc(npc_id).kind()))
            .and_where(Expr::col((npc.clone(), knowledge::Column::HolderId)).eq(npc_id))
            .order_by((npc, knowledge::Column::RumorId), sea_orm::Order::Desc)
            .limit(limit)
            .to_owned();
        let statement = self.db.get_database_backend().build(&query);
        Ok(TalkCandidate::find_by_statement(statement).all(&self.db).await?)
    }

    /// An NPC's newest rumors (at most `limit`), as talk candidates
    /// without the player's variants: the NPC's half of
    /// [`RumorStore::talk_candidates`].
    pub async fn npc_knowledge(&self, npc_id: i64, limit: u64) -> RumorResult<Vec<TalkCandidate>> {
        let rows = known_by(Holder::Npc(npc_id))
            .order_by_desc(knowledge::Column::RumorId)
            .limit(limit)
            .into_tuple::<(i64, i64, i64, i64)>()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(rumor_id, variant_id, region_id, since_ms)| TalkCandidate {
                rumor_id,
                variant_id,
                region_id,
                since_ms,
                player_variant_id: None,
            })
            .collect())
    }

    /// Every rumor a player heard, by rumor id; `None` when they heard more
    /// than `max`: the player's half of [`RumorStore::talk_candidates`],
    /// and their known rumors.
    pub async fn player_knowledge(&self, player_id: i64, max: u64) -> RumorResult<Option<HashMap<i64, HeardRumor>>> {
        let rows = known_by(Holder::Player(player_id))
            .limit(max.saturating_add(1))
            .into_tuple::<(i64, i64, i64, i64)>()
            .all(&self.db)
            .await?;
        if rows.len() as u64 > max {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .map(|(rumor_id, variant_id, region_id, since_ms)| {
                    (
                        rumor_id,
                        HeardRumor {
                            variant_id,
                            region_id,
                            since_ms,
                        },
                    )
                })
                .collect(),
        ))
    }

    /// What a set of NPCs know, as (npc, rumor, variant), newest rumors
    /// first, at most `max_rows`: one query.
    pub async fn knowledge_of_npcs(&self, npc_ids: &[i64], max_rows: u64) -> RumorResult<Vec<(i64, i64, i64)>> {
        if npc_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(knowledge::Entity::find()
            .select_only()
            .column(knowledge::Column::HolderId)
            .column(knowledge::Column::RumorId)
            .column(knowledge::Column::VariantId)
            .filter(knowledge::Column::HolderKind.eq("npc"))
            .filter(knowledge::Column::HolderId.is_in(npc_ids.iter().copied()))
            .order_by_desc(knowledge::Column::RumorId)
            .limit(max_rows)
            .into_tuple::<(i64, i64, i64)>()
            .all(&self.db)
            .await?)
    }

    /// Takes the lease on a region's tick until `until_ms` when it is free
    /// (expired or never taken): true when this caller got it. Replicas
    /// running the ticker thus tick each region once per interval.
    pub async fn take_lease(&self, region_id: i64, now_ms: i64, until_ms: i64) -> RumorResult<bool> {
        let taken = lease::Entity::update_many()
            .col_expr(lease::Column::UntilMs, Expr::value(until_ms))
            .filter(lease::Column::RegionId.eq(region_id))
            .filter(lease::Column::UntilMs.lte(now_ms))
            .exec(&self.db)
            .await?;
        if taken.rows_affected == 1 {
            return Ok(true);
        }
        let inserted = lease::Entity::insert(lease::ActiveModel {
            region_id: Set(region_id),
            until_ms: Set(until_ms),
        })
        .on_conflict_do_nothing_on([lease::Column::RegionId])
        .exec_without_returning(&self.db)
        .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
    }
}

fn variant_row(new: &NewVariant, now_ms: i64) -> variant::ActiveModel {
    variant::ActiveModel {
        rumor_id: Set(new.rumor_id),
        parent_id: Set(Some(new.parent_id)),
        teller_npc_id: Set(Some(new.teller_npc_id)),
        listener_kind: Set(Some(new.listener.kind().to_owned())),
        listener_id: Set(Some(new.listener.id())),
        text: Set(new.text.clone()),
        distortion: Set(new.distortion),
        truth: Set(new.truth),
        transformer: Set(new.transformer.clone()),
        created_at_ms: Set(now_ms),
        ..Default::default()
    }
}

/// What `holder` knows, as (rumor, variant, region, since) rows.
fn known_by(holder: Holder) -> sea_orm::Select<knowledge::Entity> {
    knowledge::Entity::find()
        .select_only()
        .column(knowledge::Column::RumorId)
        .column(knowledge::Column::VariantId)
        .column(knowledge::Column::RegionId)
        .column(knowledge::Column::SinceMs)
        .filter(knowledge::Column::HolderKind.eq(holder.kind()))
        .filter(knowledge::Column::HolderId.eq(holder.id()))
}

fn knowledge_row(new: &NewVariant, variant_id: i64, now_ms: i64) -> knowledge::ActiveModel {
    knowledge::ActiveModel {
        holder_kind: Set(new.listener.kind().to_owned()),
        holder_id: Set(new.listener.id()),
        rumor_id: Set(new.rumor_id),
        variant_id: Set(variant_id),
        region_id: Set(new.region_id),
        since_ms: Set(now_ms),
    }
}

fn to_rumor(row: rumor::Model, variant_count: i64) -> Rumor {
    let origin = match (row.origin_npc_id, row.origin_event_id) {
        (Some(npc), _) => Origin::Npc(npc),
        (None, Some(event)) => Origin::Event(event),
        // The create validates one origin; an impossible row reads as event 0.
        (None, None) => Origin::Event(0),
    };
    Rumor {
        id: row.id,
        text: row.text,
        origin,
        region_id: row.region_id,
        truth: row.truth,
        root_variant_id: row.root_variant_id,
        variant_count,
        created_at_ms: row.created_at_ms,
    }
}

impl TryFrom<variant::Model> for Variant {
    type Error = RumorError;

    fn try_from(row: variant::Model) -> Result<Variant, RumorError> {
        let listener = match (row.listener_kind.as_deref(), row.listener_id) {
            (None, _) => None,
            (Some("npc"), Some(id)) => Some(Holder::Npc(id)),
            (Some("player"), Some(id)) => Some(Holder::Player(id)),
            (kind, id) => {
                return Err(RumorError::Db(sea_orm::DbErr::Type(format!(
                    "variant {}: listener {kind:?} {id:?}",
                    row.id
                ))));
            }
        };
        Ok(Variant {
            id: row.id,
            rumor_id: row.rumor_id,
            parent_id: row.parent_id,
            teller_npc_id: row.teller_npc_id,
            listener,
            text: row.text,
            distortion: row.distortion,
            truth: row.truth,
            transformer: row.transformer,
            created_at_ms: row.created_at_ms,
        })
    }
}

/// Counts variant reads by where they were found: `hit` (this replica's
/// variant cache) or `miss` (read from the database).
fn record_variant_reads(result: &'static str, count: usize) {
    if count > 0 {
        metrics::counter!("vdm_cache_requests_total", "cache" => "rumor_variant", "result" => result)
            .increment(count as u64);
    }
}
