//! The NPC service's use cases: validation (domain), the world checks (over
//! gRPC), storage (store) and the read-through cache, composed.
//! Transport-free: `grpc.rs` converts protobuf messages to and from these
//! calls.

use std::sync::Arc;
use std::time::Duration;

use tracing::instrument;
use vdm_kit::bus::{Event, EventBody, EventBus, Subscription};
use vdm_kit::cache::{Cache, CacheStore};
use vdm_kit::idempotency::create_or_replay;
use vdm_kit::memo::{Dropping, Memo};
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::{DispositionChanged, NpcMoved, ResourceKind};

use crate::domain::{
    Disposition, Hex, Memory, MemoryInput, NewMemory, NewNpc, Npc, NpcInput, NpcPatch, NpcPatchInput, Order, Page,
    adjusted_score, adjustment_fingerprint, check_idempotency_key, positive_id,
};
use crate::error::{NpcError, NpcResult};
use crate::store::{Adjusted, NpcFilter, NpcRow, NpcStore, PlacedDisposition, Recorded};
use crate::world::WorldClient;

/// How long a cached NPC lives; every write to it also deletes it.
pub const NPC_CACHE_TTL: Duration = Duration::from_secs(30);
/// The cache key naming the current generation of cached NPC lists: every
/// NPC write (create, move, update) deletes it after its commit
/// ([`Cache::get_or_load_listed`]).
const LISTS_GENERATION: &str = "lists-generation";
/// Most ids one batch read may ask for.
pub const MAX_BATCH: usize = 100;
/// How long this replica reuses the dispositions of a player it read.
/// Every change publishes `disposition.changed` and every move
/// `npc.moved`, which drop them on every replica; this bounds a lost event.
pub const DISPOSITIONS_REUSE: Duration = Duration::from_secs(10);
/// Players whose dispositions a replica keeps at most.
const DISPOSITIONS_KEPT: usize = 100_000;
/// Dispositions of one player kept at most; a player with more is asked
/// of the database region by region.
const DISPOSITIONS_PER_PLAYER: u64 = 256;

/// A player's dispositions as a replica keeps them: `None` when there are
/// too many to keep.
type KeptDispositions = Option<Arc<[PlacedDisposition]>>;

/// Where a batch of dispositions comes from.
#[derive(Debug, Clone)]
pub enum DispositionScope {
    /// These NPCs (every known one, 0 where never adjusted).
    Npcs(Vec<i64>),
    /// The NPCs now in a region (only those ever adjusted).
    Region(i64),
}

/// NPCs, dispositions and memories, backed by the database, a cache and
/// the world service.
#[derive(Clone)]
pub struct NpcService {
    store: NpcStore,
    cache: Cache,
    world: WorldClient,
    memory_cap: usize,
    events: EventBus,
    /// Every disposition of a player, with each NPC's region, as this
    /// replica last read it ([`DISPOSITIONS_REUSE`]): every bootstrap asks
    /// for the player's dispositions in its region, and they change only
    /// when a quest is completed. This replica's changes drop a player's
    /// entry after their commit, the bus's `disposition.changed` another
    /// replica's, and an NPC's move (here or on the bus) drops them all.
    dispositions_here: Arc<Memo<i64, KeptDispositions>>,
}

impl NpcService {
    /// Builds the service over a store and the world client, deriving its
    /// cache from `caches`.
    pub fn new(
        store: NpcStore,
        caches: &CacheStore,
        world: WorldClient,
        memory_cap: u32,
        events: EventBus,
    ) -> NpcService {
        NpcService {
            store,
            events,
            cache: caches.cache("npc", NPC_CACHE_TTL),
            world,
            memory_cap: memory_cap as usize,
            dispositions_here: Arc::new(Memo::new(DISPOSITIONS_REUSE, DISPOSITIONS_KEPT)),
        }
    }

    /// Drops the dispositions this replica keeps as the bus says they
    /// changed elsewhere, until `stop`. Subscribe before the first read.
    pub async fn follow_disposition_changes(&self, subscription: Subscription, stop: CancellationToken) {
        self.dispositions_here
            .follow(subscription, stop, "dispositions", |event| match &event.body {
                Some(EventBody::DispositionChanged(changed)) => Dropping::Key(changed.player_id),
                // Any player's dispositions in a region may include that NPC.
                Some(EventBody::NpcMoved(_)) => Dropping::Everything,
                _ => Dropping::Nothing,
            })
            .await;
    }

    /// Answers whether the database is reachable. The world service is not
    /// part of readiness: reads work without it, and writes that need it
    /// answer Unavailable on their own.
    pub async fn ready(&self) -> NpcResult<()> {
        self.store.ping().await
    }

    /// Creates an NPC after checking its region, cell and faction with the
    /// world service, or replays the result of an earlier request with the
    /// same idempotency key. Returns the NPC and whether it was a replay.
    #[instrument(skip_all, fields(npc.id))]
    pub async fn create(&self, input: NpcInput, idempotency_key: Option<&str>, now_ms: i64) -> NpcResult<(Npc, bool)> {
        check_idempotency_key(idempotency_key)?;
        let new = NewNpc::parse(input)?;
        let fingerprint = new.fingerprint();
        let key = idempotency_key.map(|k| (k, fingerprint.as_str()));
        let created = create_or_replay(
            idempotency_key,
            |key| self.store.replay(key, &fingerprint),
            || async {
                let row = self.placed(new).await?;
                self.store.insert(&row, key, now_ms).await
            },
        )
        .await?;
        let replayed = !created.is_new();
        let npc = created.into_inner();
        tracing::Span::current().record("npc.id", npc.id);
        tracing::info!(npc.id = npc.id, replayed, "npc created");
        if !replayed {
            self.cache.delete(LISTS_GENERATION).await;
            // Lists of NPCs that gateways keep now miss one. (A move needs
            // no event of its own: gateways read `npc.moved` as a change.)
            self.events
                .publish(Event::resource_changed(ResourceKind::Npc, npc.id))
                .await;
        }
        Ok((npc, replayed))
    }

    /// Where a new NPC goes, checked with the world service: its cell (the
    /// region's first when it names none) and its faction.
    async fn placed(&self, new: NewNpc) -> NpcResult<NpcRow> {
        let cells = self.world.region_cells(new.region_id).await?;
        let position = match new.position {
            Some(hex) if cells.contains(&hex) => hex,
            Some(hex) => {
                return Err(NpcError::NotInRegion {
                    hex,
                    region_id: new.region_id,
                });
            }
            None => *cells.first().ok_or(NpcError::UnknownRegion(new.region_id))?,
        };
        if let Some(faction_id) = new.faction_id
            && !self.world.faction_exists(faction_id).await?
        {
            return Err(NpcError::UnknownFaction(faction_id));
        }
        Ok(NpcRow {
            name: new.name,
            region_id: new.region_id,
            position,
            faction_id: new.faction_id,
            traits: new.traits,
        })
    }

    /// Reads an NPC through the cache.
    #[instrument(skip_all, fields(npc.id = id))]
    pub async fn get(&self, id: i64) -> NpcResult<Npc> {
        positive_id("id", id)?;
        self.cache
            .get_or_load(&id.to_string(), async {
                self.store.get(id).await?.ok_or(NpcError::NpcNotFound(id))
            })
            .await
    }

    /// Reads up to [`MAX_BATCH`] NPCs in one query; unknown ids are left out.
    #[instrument(skip_all, fields(count = ids.len()))]
    pub async fn batch_get(&self, ids: &[i64]) -> NpcResult<Vec<Npc>> {
        check_batch("ids", ids)?;
        let mut unique = ids.to_vec();
        let mut seen = std::collections::HashSet::new();
        unique.retain(|id| seen.insert(*id));
        self.store.get_many(&unique).await
    }

    /// Lists NPCs by region and faction.
    #[instrument(skip_all)]
    pub async fn list(&self, filter: NpcFilter, limit: u32, cursor: &str) -> NpcResult<(Vec<Npc>, Option<String>)> {
        for (field, value) in [("region_id", filter.region_id), ("faction_id", filter.faction_id)] {
            if let Some(id) = value {
                positive_id(field, id)?;
            }
        }
        let page = Page::parse(limit, cursor)?;
        // A region's list is in every bootstrap, the same for every player.
        let key = format!("{:?}:{:?}:{limit}:{cursor}", filter.region_id, filter.faction_id);
        self.cache
            .get_or_load_listed(LISTS_GENERATION, &key, self.store.list(filter, page))
            .await
    }

    /// Moves an NPC to a hex on the map (asked of the world service) and
    /// drops its cache entry.
    #[instrument(skip_all, fields(npc.id = id, hex.q = to.q, hex.r = to.r))]
    pub async fn move_to(&self, id: i64, to: Hex, now_ms: i64) -> NpcResult<Npc> {
        positive_id("id", id)?;
        if !to.in_bounds() {
            return Err(NpcError::OutsideMap(to));
        }
        // Unknown NPCs fail before the world is asked.
        let before = self.get(id).await?;
        let region_id = self.world.region_at(to).await?;
        let moved = self.store.move_to(id, region_id, to, now_ms).await;
        // Whatever the outcome (a failed commit may still have landed).
        self.dispositions_here.forget_all();
        self.cache.delete(&id.to_string()).await;
        self.cache.delete(LISTS_GENERATION).await;
        let npc = moved?.ok_or(NpcError::NpcNotFound(id))?;
        tracing::info!(region.id = region_id, "npc moved");
        // Subscribers of the region it left and of the one it entered.
        let mut regions = vec![before.region_id, npc.region_id];
        regions.dedup();
        self.events
            .publish(Event {
                player_id: None,
                region_ids: regions,
                body: Some(EventBody::NpcMoved(NpcMoved {
                    npc_id: npc.id,
                    from_region_id: before.region_id,
                    region_id: npc.region_id,
                    q: npc.position.q,
                    r: npc.position.r,
                })),
            })
            .await;
        Ok(npc)
    }

    /// Changes an NPC's name, faction or traits (a new faction checked
    /// with the world service), drops its cache entry and tells gateways.
    #[instrument(skip_all, fields(npc.id = id))]
    pub async fn update(&self, id: i64, input: NpcPatchInput, now_ms: i64) -> NpcResult<Npc> {
        positive_id("id", id)?;
        let patch = NpcPatch::parse(input)?;
        if patch.is_empty() {
            return self.get(id).await;
        }
        if let Some(Some(faction_id)) = patch.faction_id {
            // Unknown NPCs fail before the world is asked.
            self.get(id).await?;
            if !self.world.faction_exists(faction_id).await? {
                return Err(NpcError::UnknownFaction(faction_id));
            }
        }
        let updated = self.store.update(id, &patch, now_ms).await;
        self.cache.delete(&id.to_string()).await;
        self.cache.delete(LISTS_GENERATION).await;
        let npc = updated?.ok_or(NpcError::NpcNotFound(id))?;
        tracing::info!("npc updated");
        self.events
            .publish(Event::resource_changed(ResourceKind::Npc, npc.id))
            .await;
        Ok(npc)
    }

    /// Adds `delta` to a player's disposition with an NPC. With an
    /// idempotency key the delta is added once: a repeat returns the
    /// disposition as it is now, with `replayed` set.
    #[instrument(skip_all, fields(npc.id = npc_id, player.id = player_id, delta, replayed))]
    pub async fn adjust_disposition(
        &self,
        npc_id: i64,
        player_id: i64,
        delta: i32,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> NpcResult<Adjusted> {
        positive_id("npc_id", npc_id)?;
        positive_id("player_id", player_id)?;
        check_idempotency_key(idempotency_key)?;
        adjusted_score(0, delta)?;
        let fingerprint = adjustment_fingerprint(npc_id, player_id, delta);
        let changed = self
            .store
            .change_disposition(
                npc_id,
                player_id,
                |current| adjusted_score(current, delta),
                idempotency_key.map(|key| (key, fingerprint.as_str())),
                now_ms,
            )
            .await;
        // Whatever the outcome (a failed commit may still have landed).
        self.dispositions_here.forget(&player_id);
        let adjusted = changed?;
        tracing::Span::current().record("replayed", adjusted.replayed);
        if adjusted.replayed {
            metrics::counter!("vdm_npc_disposition_replays_total").increment(1);
            tracing::info!(score = adjusted.disposition.score, "disposition adjustment replayed");
            return Ok(adjusted);
        }
        tracing::info!(score = adjusted.disposition.score, "disposition adjusted");
        self.events
            .publish(Event {
                player_id: None,
                region_ids: Vec::new(),
                body: Some(EventBody::DispositionChanged(DispositionChanged {
                    npc_id,
                    player_id,
                    score: adjusted.disposition.score,
                })),
            })
            .await;
        Ok(adjusted)
    }

    /// A player's disposition with an NPC (0 when never adjusted).
    #[instrument(skip_all, fields(npc.id = npc_id, player.id = player_id))]
    pub async fn disposition(&self, npc_id: i64, player_id: i64) -> NpcResult<Disposition> {
        positive_id("player_id", player_id)?;
        self.get(npc_id).await?;
        Ok(self.store.disposition(npc_id, player_id).await?.unwrap_or(Disposition {
            npc_id,
            player_id,
            score: 0,
            updated_at_ms: 0,
        }))
    }

    /// A player's dispositions with many NPCs.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn dispositions(&self, player_id: i64, scope: DispositionScope) -> NpcResult<Vec<Disposition>> {
        positive_id("player_id", player_id)?;
        match scope {
            DispositionScope::Npcs(ids) => {
                check_batch("npc_ids", &ids)?;
                self.store.dispositions_of(player_id, &ids).await
            }
            DispositionScope::Region(region_id) => {
                positive_id("region_id", region_id)?;
                let store = self.store.clone();
                let (kept, source) = self
                    .dispositions_here
                    .get_or_load(player_id, async move {
                        let placed = store.placed_dispositions(player_id, DISPOSITIONS_PER_PLAYER).await?;
                        Ok::<_, NpcError>(placed.map(Arc::from))
                    })
                    .await?;
                metrics::counter!("vdm_npc_disposition_reads_total", "source" => source.label("replica", "database"))
                    .increment(1);
                match kept {
                    Some(placed) => Ok(placed
                        .iter()
                        .filter(|placed| placed.region_id == region_id)
                        .map(|placed| placed.disposition)
                        .collect()),
                    None => self.store.dispositions_in_region(player_id, region_id).await,
                }
            }
        }
    }

    /// Records a memory (at the world clock's time when none is given) and
    /// forgets what the cap asks.
    #[instrument(skip_all, fields(npc.id = input.npc_id))]
    pub async fn record_memory(
        &self,
        input: MemoryInput,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> NpcResult<Recorded> {
        check_idempotency_key(idempotency_key)?;
        let new = NewMemory::parse(input)?;
        // Unknown NPCs fail before the world is asked.
        self.get(new.npc_id).await?;
        let game_time_ms = match new.game_time_ms {
            Some(t) => t,
            None => self.world.game_time_ms().await?,
        };
        let recorded = self
            .store
            .record_memory(&new, game_time_ms, idempotency_key, self.memory_cap, now_ms)
            .await?;
        if !recorded.dropped_ids.is_empty() {
            tracing::info!(dropped = recorded.dropped_ids.len(), "npc forgot memories over its cap");
        }
        Ok(recorded)
    }

    /// Lists an NPC's memories, newest first.
    #[instrument(skip_all, fields(npc.id = npc_id))]
    pub async fn memories(&self, npc_id: i64, limit: u32, cursor: &str) -> NpcResult<(Vec<Memory>, Option<String>)> {
        let page = Page::parse_ordered(limit, cursor, Order::Descending)?;
        self.get(npc_id).await?;
        self.store.list_memories(npc_id, page).await
    }
}

fn check_batch(field: &str, ids: &[i64]) -> NpcResult<()> {
    if ids.len() > MAX_BATCH {
        return Err(NpcError::Invalid(format!(
            "{field} may hold at most {MAX_BATCH} ids, got {}",
            ids.len()
        )));
    }
    for id in ids {
        positive_id(field, *id)?;
    }
    Ok(())
}
