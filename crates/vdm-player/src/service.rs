//! The player service's use cases: validation (domain), storage (store)
//! and events, composed. Transport-free: `grpc.rs` converts protobuf
//! messages to and from these calls.

use std::sync::Arc;
use std::time::Duration;

use tracing::instrument;
use vdm_kit::bus::{Event, EventBody, EventBus, Subscription};
use vdm_kit::cache::{Cache, CacheStore};
use vdm_kit::idempotency::Created;
use vdm_kit::memo::{Dropping, Memo};
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::{PlayerLevelUp, ResourceKind};

use crate::domain::{
    Change, DisplayName, Item, ItemInput, LedgerEntry, NewItem, Order, Outcome, Page, Profile, Revocation, Rotation,
    Standing, device_id, positive_id, session_id,
};
use crate::error::{PlayerError, PlayerResult};
use crate::store::PlayerStore;

/// Accounts, profiles, items, inventories and the ledger, backed by the
/// database; changes are published on the event bus.
#[derive(Clone)]
pub struct PlayerService {
    store: PlayerStore,
    events: EventBus,
    /// A player's faction standings by player id: read on every NPC talk
    /// (the gateway asks before the rumor service answers), changed only
    /// by [`PlayerService::apply`], which drops the entry after its commit.
    standings: Cache,
    /// Profiles by player id: read by every bootstrap and `GET /v1/me`,
    /// changed by [`PlayerService::apply`] and display names, which drop
    /// the entry after their commit.
    profiles: Cache,
    /// Profiles as this replica last read them, in front of `profiles`
    /// ([`PROFILE_REUSE`]): a read from the shared cache is a round trip
    /// to Redis, and the bootstrap and `GET /v1/me` ask for the same
    /// player's profile every few seconds. This replica's changes drop an
    /// entry after their commit, the bus's `player.updated` another's.
    profiles_here: Arc<Memo<i64, Profile>>,
    /// Inventories as this replica last read them ([`PROFILE_REUSE`]):
    /// `GET /v1/me/inventory` is a join of three tables. Dropped with the
    /// profile (every change of a player's balances goes through
    /// [`PlayerService::apply`], which publishes `player.updated`), and all
    /// of them by a change to the item catalog, here or (`resource.changed`
    /// of kind item) on another replica.
    inventories_here: Arc<Memo<i64, Inventory>>,
}

/// A player's stacks with their items, in item id order.
pub type Inventory = Arc<[(Item, i64)]>;

/// How long cached standings live (a dropped entry is the usual end).
const STANDINGS_TTL: Duration = Duration::from_secs(60);
/// How long a cached profile lives. A dropped entry is the usual end; the
/// TTL bounds what a read racing a change can leave behind (a profile
/// read before the change's commit and stored after its drop), and what
/// `vdm migrate accounts`, another process, changes.
const PROFILE_TTL: Duration = Duration::from_secs(10);
/// How long this replica reuses a profile it read. Every change publishes
/// `player.updated`, which drops it on every replica; this bounds a lost
/// event and what `vdm migrate accounts` changes.
pub const PROFILE_REUSE: Duration = Duration::from_secs(10);
/// Profiles a replica keeps at most.
const PROFILES_KEPT: usize = 100_000;
/// Inventories a replica keeps at most (larger than profiles: a few stacks
/// each, with their items).
const INVENTORIES_KEPT: usize = 20_000;

impl PlayerService {
    /// Builds the service over a store, its caches and an event bus.
    pub fn new(store: PlayerStore, caches: &CacheStore, events: EventBus) -> PlayerService {
        PlayerService {
            store,
            events,
            standings: caches.cache("player_standings", STANDINGS_TTL),
            profiles: caches.cache("player_profile", PROFILE_TTL),
            profiles_here: Arc::new(Memo::new(PROFILE_REUSE, PROFILES_KEPT)),
            inventories_here: Arc::new(Memo::new(PROFILE_REUSE, INVENTORIES_KEPT)),
        }
    }

    /// Answers whether the database is reachable.
    pub async fn ready(&self) -> PlayerResult<()> {
        self.store.ping().await
    }

    /// Returns the player of a device, creating it on first sight, and
    /// whether it was created now.
    #[instrument(skip_all, fields(player.id))]
    pub async fn sign_in(&self, device: &str, now_ms: i64) -> PlayerResult<(i64, bool)> {
        let device = device_id(device)?;
        let (player_id, created) = self.store.sign_in(device, now_ms).await?;
        tracing::Span::current().record("player.id", player_id);
        if created {
            tracing::info!(player.id = player_id, "player created");
        }
        Ok((player_id, created))
    }

    /// Registers a player the gateway signed in, under the gateway's id;
    /// returns whether it was registered now.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn register(&self, player_id: i64, device: &str, now_ms: i64) -> PlayerResult<bool> {
        positive_id("player_id", player_id)?;
        let device = device_id(device)?;
        let created = self.store.register(player_id, device, now_ms).await?;
        if created {
            tracing::info!("player registered");
        }
        Ok(created)
    }

    /// Moves a session family to its next refresh generation (see
    /// [`PlayerStore::rotate`]).
    #[instrument(skip_all, fields(player.id = player_id, generation))]
    pub async fn rotate_session(
        &self,
        player_id: i64,
        sid: &str,
        generation: i64,
        issued_at_ms: i64,
        now_ms: i64,
    ) -> PlayerResult<Rotation> {
        positive_id("player_id", player_id)?;
        let sid = session_id(sid)?;
        if generation < 0 {
            return Err(PlayerError::Invalid(format!(
                "generation must not be negative, got {generation}"
            )));
        }
        let rotation = self
            .store
            .rotate(player_id, sid, generation, issued_at_ms, now_ms)
            .await?;
        if rotation == Rotation::Reused {
            tracing::warn!(
                player.id = player_id,
                "spent refresh token used again: session family revoked"
            );
        }
        Ok(rotation)
    }

    /// Revokes one session family; returns when.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn revoke_session(&self, player_id: i64, sid: &str, now_ms: i64) -> PlayerResult<i64> {
        positive_id("player_id", player_id)?;
        let sid = session_id(sid)?;
        self.store.revoke_session(player_id, sid, now_ms).await?;
        tracing::info!("session revoked");
        Ok(now_ms)
    }

    /// Revokes every session of a player issued until `at_ms` (0: now);
    /// returns that time.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn revoke_player(&self, player_id: i64, at_ms: i64, now_ms: i64) -> PlayerResult<i64> {
        positive_id("player_id", player_id)?;
        if at_ms < 0 {
            return Err(PlayerError::Invalid(format!("at_ms must not be negative, got {at_ms}")));
        }
        let at_ms = if at_ms == 0 { now_ms } else { at_ms };
        if !self.store.revoke_player(player_id, at_ms).await? {
            return Err(PlayerError::PlayerNotFound(player_id));
        }
        tracing::info!("every session of the player revoked");
        Ok(at_ms)
    }

    /// The revocations made since `since_ms`.
    #[instrument(skip_all)]
    pub async fn revocations_since(&self, since_ms: i64) -> PlayerResult<Vec<Revocation>> {
        self.store.revocations_since(since_ms).await
    }

    /// Reads a player's profile.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn profile(&self, player_id: i64) -> PlayerResult<Profile> {
        positive_id("player_id", player_id)?;
        let key = player_id.to_string();
        let load = self.profiles.get_or_load(&key, async {
            self.store
                .get_profile(player_id)
                .await?
                .ok_or(PlayerError::PlayerNotFound(player_id))
        });
        let (profile, source) = self.profiles_here.get_or_load(player_id, load).await?;
        metrics::counter!("vdm_player_profile_reads_total", "source" => source.label("replica", "cache")).increment(1);
        Ok(profile)
    }

    /// Drops what this replica and the shared cache keep of a player's
    /// profile, after a change to it committed: the shared entry first, so
    /// a read after the memo's drop cannot bring the old profile back from
    /// the cache.
    async fn profile_changed(&self, player_id: i64) {
        self.profiles.delete(&player_id.to_string()).await;
        self.profiles_here.forget(&player_id);
        self.inventories_here.forget(&player_id);
    }

    /// Follows the bus until `stop`, dropping the profile and inventory of
    /// each player whose `player.updated` it hears (another replica's
    /// change, or this one's coming back), every inventory on a change to
    /// the item catalog, and everything kept when deliveries were missed.
    /// Takes two subscriptions, one per memo; subscribe before the first
    /// read.
    pub async fn follow_changes(&self, profiles: Subscription, inventories: Subscription, stop: CancellationToken) {
        let updated = |event: &Event| match (&event.body, event.player_id) {
            (Some(EventBody::PlayerUpdated(_)), Some(player_id)) => Some(player_id),
            _ => None,
        };
        let profiles = self.profiles_here.follow(profiles, stop.clone(), "profiles", updated);
        let inventories = self
            .inventories_here
            .follow(inventories, stop, "inventories", |event| match &event.body {
                Some(EventBody::ResourceChanged(changed)) if changed.kind() == ResourceKind::Item => {
                    Dropping::Everything
                }
                _ => updated(event).into(),
            });
        tokio::join!(profiles, inventories);
    }

    /// Changes a player's profile (its display name, when given).
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn update_profile(
        &self,
        player_id: i64,
        display_name: Option<&str>,
        now_ms: i64,
    ) -> PlayerResult<Profile> {
        positive_id("player_id", player_id)?;
        let Some(raw) = display_name else {
            return self.profile(player_id).await;
        };
        let name = DisplayName::parse(raw)?;
        let set = self.store.set_display_name(player_id, &name, now_ms).await;
        // Whatever the outcome (a failed commit may still have landed).
        self.profile_changed(player_id).await;
        let profile = set?;
        tracing::info!("display name set");
        self.publish_updated(&profile).await;
        Ok(profile)
    }

    /// Creates or replaces a catalog item.
    #[instrument(skip_all, fields(item.id = input.id))]
    pub async fn put_item(&self, input: ItemInput, now_ms: i64) -> PlayerResult<Item> {
        let new = NewItem::parse(input)?;
        let put = self.store.put_item(&new, now_ms).await;
        // Whatever the outcome (a failed commit may still have landed):
        // inventories show the items' names, kinds and limits.
        self.inventories_here.forget_all();
        let item = put?;
        tracing::info!(item.key = %item.key, "item written");
        self.events
            .publish(Event::resource_changed(ResourceKind::Item, item.id))
            .await;
        Ok(item)
    }

    /// Reads one catalog item.
    #[instrument(skip_all, fields(item.id = id))]
    pub async fn item(&self, id: i64) -> PlayerResult<Item> {
        positive_id("id", id)?;
        self.store.get_item(id).await?.ok_or(PlayerError::ItemNotFound(id))
    }

    /// Lists the catalog.
    #[instrument(skip_all)]
    pub async fn items(&self, limit: u32, cursor: &str) -> PlayerResult<(Vec<Item>, Option<String>)> {
        self.store.list_items(Page::parse(limit, cursor)?).await
    }

    /// Reads a player's stacks.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn inventory(&self, player_id: i64) -> PlayerResult<Inventory> {
        positive_id("player_id", player_id)?;
        let load = async {
            let held = self.store.inventory(player_id).await?;
            held.map(Inventory::from).ok_or(PlayerError::PlayerNotFound(player_id))
        };
        let (held, source) = self.inventories_here.get_or_load(player_id, load).await?;
        metrics::counter!("vdm_player_inventory_reads_total", "source" => source.label("replica", "database"))
            .increment(1);
        Ok(held)
    }

    /// Lists a player's ledger, oldest first, or newest first.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn ledger(
        &self,
        player_id: i64,
        limit: u32,
        cursor: &str,
        newest_first: bool,
    ) -> PlayerResult<(Vec<LedgerEntry>, Option<String>)> {
        positive_id("player_id", player_id)?;
        let order = if newest_first {
            Order::Descending
        } else {
            Order::Ascending
        };
        let page = Page::parse_ordered(limit, cursor, order)?;
        if self.store.get_profile(player_id).await?.is_none() {
            return Err(PlayerError::PlayerNotFound(player_id));
        }
        self.store.ledger(player_id, page).await
    }

    /// Reads a player's standing with every faction it has one with.
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn standings(&self, player_id: i64) -> PlayerResult<Vec<Standing>> {
        positive_id("player_id", player_id)?;
        self.standings
            .get_or_load(&player_id.to_string(), async {
                self.store
                    .standings(player_id)
                    .await?
                    .ok_or(PlayerError::PlayerNotFound(player_id))
            })
            .await
    }

    /// Applies a change of balances (a grant, a removal, a reward), once
    /// per grant id; publishes `player.updated` (and `player.level_up`)
    /// when it applied now.
    #[instrument(skip_all, fields(player.id = change.player_id, grant.id = change.grant_id.as_deref()))]
    pub async fn apply(&self, change: Change, now_ms: i64) -> PlayerResult<Outcome> {
        let outcome = match self.store.apply(&change, now_ms).await {
            Ok(Created::New(outcome)) => outcome,
            Ok(Created::Replayed(outcome)) => {
                tracing::info!("grant replayed");
                return Ok(outcome);
            }
            Err(err) => {
                // A failed commit may still have landed.
                self.profile_changed(change.player_id).await;
                return Err(err);
            }
        };
        self.profile_changed(change.player_id).await;
        if !change.amounts.standings.is_empty() {
            self.standings.delete(&change.player_id.to_string()).await;
        }
        tracing::info!(
            gold = change.amounts.gold,
            xp = change.amounts.xp,
            items = change.amounts.items.len(),
            standings = change.amounts.standings.len(),
            level = outcome.profile.level,
            "balances changed"
        );
        self.publish_updated(&outcome.profile).await;
        if outcome.leveled_up() {
            self.publish(
                outcome.profile.player_id,
                EventBody::PlayerLevelUp(PlayerLevelUp {
                    player_id: outcome.profile.player_id,
                    previous_level: outcome.previous_level,
                    level: outcome.profile.level,
                }),
            )
            .await;
        }
        Ok(outcome)
    }

    /// Tells the player (`player.updated`), after the write committed.
    async fn publish_updated(&self, profile: &Profile) {
        let body = EventBody::PlayerUpdated(vdm_proto::player::v1::Profile::from(profile.clone()));
        self.publish(profile.player_id, body).await;
    }

    async fn publish(&self, player_id: i64, body: EventBody) {
        let event = Event {
            player_id: Some(player_id),
            region_ids: Vec::new(),
            body: Some(body),
        };
        self.events.publish(event).await;
    }
}
