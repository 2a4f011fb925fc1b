//! The world service's use cases: validation (domain), storage (store) and
//! the read-through caches, composed. Transport-free: `grpc.rs` converts
//! protobuf messages to and from these calls.
//!
//! Regions and factions change rarely and are read on every NPC move and
//! game bootstrap, so they are cached for minutes; every write to them
//! deletes the entries it affects after its transaction commits.

use std::time::Duration;

use tracing::instrument;
use vdm_kit::bus::{Event, EventBody, EventBus};
use vdm_kit::cache::{Cache, CacheStore};
use vdm_proto::events::v1::ResourceKind;

use crate::domain::{
    Clock, EventInput, Faction, FactionRelation, Hex, NewEvent, NewRegion, Page, Region, RegionInput, WorldEvent,
    WorldTime, adjusted_score, all_pairs, check_score, pair, parse_faction, positive_filter, positive_id,
};
use crate::error::{WorldError, WorldResult};
use crate::store::{Created, WorldStore};

/// How long cached regions, hex lookups and factions live; writes also
/// delete them.
pub const WORLD_CACHE_TTL: Duration = Duration::from_secs(300);

/// The cache key of the whole region list.
const ALL_REGIONS: &str = "all";
/// The cache keys of the faction list and of the stored relations.
const FACTIONS: &str = "factions";
const RELATIONS: &str = "relations";

/// Regions, factions, the clock and events, backed by the database and caches.
#[derive(Clone)]
pub struct WorldService {
    store: WorldStore,
    /// Regions by id, and the list of all regions.
    regions: Cache,
    /// The id of the region holding each hex (0: none).
    hexes: Cache,
    /// Factions and stored relations.
    factions: Cache,
    clock: Clock,
    events: EventBus,
}

impl WorldService {
    /// Builds the service over a store and the loaded clock, deriving its
    /// caches from `caches`.
    pub fn new(store: WorldStore, caches: &CacheStore, clock: Clock, events: EventBus) -> WorldService {
        WorldService {
            store,
            events,
            regions: caches.cache("world_region", WORLD_CACHE_TTL),
            hexes: caches.cache("world_hex", WORLD_CACHE_TTL),
            factions: caches.cache("world_faction", WORLD_CACHE_TTL),
            clock,
        }
    }

    /// Answers whether the database is reachable.
    pub async fn ready(&self) -> WorldResult<()> {
        self.store.ping().await
    }

    /// Lists every region.
    #[instrument(skip_all)]
    pub async fn list_regions(&self) -> WorldResult<Vec<Region>> {
        self.regions.get_or_load(ALL_REGIONS, self.store.list_regions()).await
    }

    /// Reads a region.
    #[instrument(skip_all, fields(region.id = id))]
    pub async fn get_region(&self, id: i64) -> WorldResult<Region> {
        positive_id("id", id)?;
        self.regions
            .get_or_load(&id.to_string(), async {
                self.store.get_region(id).await?.ok_or(WorldError::RegionNotFound(id))
            })
            .await
    }

    /// Reads the region holding `hex`.
    #[instrument(skip_all, fields(hex.q = hex.q, hex.r = hex.r))]
    pub async fn region_at(&self, hex: Hex) -> WorldResult<Region> {
        if !hex.in_bounds() {
            return Err(WorldError::OutsideMap(hex));
        }
        // Misses are cached too (as 0): an NPC walking off the map should
        // not cost a query per step.
        let id = self
            .hexes
            .get_or_load(&hex_key(hex), async {
                Ok::<_, WorldError>(self.store.region_id_at(hex).await?.unwrap_or(0))
            })
            .await?;
        if id == 0 {
            return Err(WorldError::OutsideMap(hex));
        }
        self.get_region(id).await
    }

    /// Creates or replaces a region; returns it and whether it was created.
    #[instrument(skip_all, fields(region.id = input.id))]
    pub async fn upsert_region(&self, input: RegionInput, now_ms: i64) -> WorldResult<(Region, bool)> {
        let new = NewRegion::parse(input)?;
        let before = self.store.get_region(new.id).await?;
        let created = self.store.upsert_region(&new, now_ms).await;
        // Dropped even when the write failed: a failed write may still have
        // been committed (a lost answer), and a miss costs one query.
        let region = self.store.get_region(new.id).await;
        self.forget_region(before.as_ref(), region.as_ref().ok().and_then(Option::as_ref))
            .await;
        // Gateways drop the region, and the neighbours' lists with it.
        self.publish_changed(ResourceKind::Region, new.id).await;
        let created = created?;
        let region = region?.ok_or(WorldError::RegionNotFound(new.id))?;
        tracing::info!(created, cells = region.cells.len(), "region saved");
        Ok((region, created))
    }

    /// Drops every cache entry a region write may have changed: the region,
    /// its old and new neighbours (their neighbour lists), the list, and
    /// the hex lookups of its old and new cells.
    async fn forget_region(&self, before: Option<&Region>, after: Option<&Region>) {
        let mut ids: Vec<i64> = Vec::new();
        let mut cells: Vec<Hex> = Vec::new();
        for region in [before, after].into_iter().flatten() {
            ids.push(region.id);
            ids.extend(&region.neighbor_ids);
            cells.extend(&region.cells);
        }
        ids.sort_unstable();
        ids.dedup();
        cells.sort_unstable();
        cells.dedup();
        self.regions.delete(ALL_REGIONS).await;
        for id in ids {
            self.regions.delete(&id.to_string()).await;
        }
        for cell in cells {
            self.hexes.delete(&hex_key(cell)).await;
        }
    }

    /// Lists every faction.
    #[instrument(skip_all)]
    pub async fn list_factions(&self) -> WorldResult<Vec<Faction>> {
        self.factions.get_or_load(FACTIONS, self.store.list_factions()).await
    }

    /// Creates or renames a faction; returns it and whether it was created.
    #[instrument(skip_all, fields(faction.id = id))]
    pub async fn upsert_faction(&self, id: i64, name: String, now_ms: i64) -> WorldResult<(Faction, bool)> {
        let faction = parse_faction(id, name)?;
        let created = self.store.upsert_faction(&faction, now_ms).await;
        self.factions.delete(FACTIONS).await;
        self.publish_changed(ResourceKind::Faction, faction.id).await;
        let created = created?;
        tracing::info!(created, "faction saved");
        Ok((faction, created))
    }

    /// The relations of every pair, or of one faction with every other.
    #[instrument(skip_all)]
    pub async fn relations(&self, faction_id: Option<i64>) -> WorldResult<Vec<FactionRelation>> {
        let factions = self.list_factions().await?;
        if let Some(id) = faction_id {
            positive_id("faction_id", id)?;
            if !factions.iter().any(|f| f.id == id) {
                return Err(WorldError::FactionNotFound(id));
            }
        }
        let stored = self
            .factions
            .get_or_load(RELATIONS, self.store.stored_relations())
            .await?;
        Ok(all_pairs(&factions, &stored, faction_id))
    }

    /// Adds `delta` to a pair's score.
    #[instrument(skip_all, fields(faction.a = a, faction.b = b, delta))]
    pub async fn adjust_relation(&self, a: i64, b: i64, delta: i32, now_ms: i64) -> WorldResult<FactionRelation> {
        let pair = pair(a, b)?;
        adjusted_score(0, delta)?;
        let relation = self
            .store
            .change_relation(pair, |current| adjusted_score(current, delta), now_ms)
            .await;
        self.factions.delete(RELATIONS).await;
        self.publish_changed(ResourceKind::Faction, 0).await;
        let relation = relation?;
        tracing::info!(score = relation.score, "faction relation adjusted");
        Ok(relation)
    }

    /// Sets a pair's score.
    #[instrument(skip_all, fields(faction.a = a, faction.b = b))]
    pub async fn set_relation(&self, a: i64, b: i64, score: i32, now_ms: i64) -> WorldResult<FactionRelation> {
        let pair = pair(a, b)?;
        let score = check_score(score)?;
        let relation = self.store.change_relation(pair, |_| Ok(score), now_ms).await;
        self.factions.delete(RELATIONS).await;
        self.publish_changed(ResourceKind::Faction, 0).await;
        relation
    }

    /// Tells gateways that a region or the factions changed
    /// (`resource.changed`), after this service dropped its own entries
    /// (also after a failed write, which may have committed), so a gateway
    /// that refills at once reads the new state.
    async fn publish_changed(&self, kind: ResourceKind, id: i64) {
        self.events.publish(Event::resource_changed(kind, id)).await;
    }

    /// The world time at a real instant.
    pub fn time(&self, now_ms: i64) -> WorldTime {
        self.clock.time_at(now_ms)
    }

    /// Publishes an event at the current game time, or replays the result
    /// of an earlier request with the same idempotency key. Returns the
    /// event and whether it was a replay.
    #[instrument(skip_all, fields(event.id))]
    pub async fn publish_event(
        &self,
        input: EventInput,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> WorldResult<(WorldEvent, bool)> {
        vdm_kit::validate::idempotency_key(idempotency_key)?;
        let new = NewEvent::parse(input)?;
        if let Some(unknown) = self.store.first_unknown_region(&new.region_ids).await? {
            return Err(WorldError::UnknownRegion(unknown));
        }
        let game_time_ms = self.clock.game_time_at(now_ms);
        let (event, replayed) = match self
            .store
            .publish_event(&new, idempotency_key, game_time_ms, now_ms)
            .await?
        {
            Created::New(event) => (event, false),
            Created::Replayed(event) => (event, true),
        };
        tracing::Span::current().record("event.id", event.id);
        tracing::info!(event.id = event.id, replayed, kind = %event.kind, "world event published");
        if !replayed {
            // Players subscribed to any affected region get it pushed.
            let push = Event {
                player_id: None,
                region_ids: event.region_ids.clone(),
                body: Some(EventBody::WorldEvent(vdm_proto::world::v1::WorldEvent::from(
                    event.clone(),
                ))),
            };
            self.events.publish(push).await;
        }
        Ok((event, replayed))
    }

    /// Reads one event.
    #[instrument(skip_all, fields(event.id = id))]
    pub async fn get_event(&self, id: i64) -> WorldResult<WorldEvent> {
        positive_id("id", id)?;
        self.store.get_event(id).await?.ok_or(WorldError::EventNotFound(id))
    }

    /// Lists events by region and since a real time.
    #[instrument(skip_all)]
    pub async fn list_events(
        &self,
        region_id: Option<i64>,
        since_ms: Option<i64>,
        limit: u32,
        cursor: &str,
    ) -> WorldResult<(Vec<WorldEvent>, Option<String>)> {
        positive_filter("region_id", region_id)?;
        if let Some(since_ms) = since_ms.filter(|ms| *ms < 0) {
            return Err(WorldError::Invalid(format!(
                "since_ms must not be negative, got {since_ms}"
            )));
        }
        self.store
            .list_events(region_id, since_ms, Page::parse(limit, cursor)?)
            .await
    }
}

fn hex_key(hex: Hex) -> String {
    format!("{},{}", hex.q, hex.r)
}
