//! The quest service's use cases: validation (domain), storage (store) and
//! the read-through cache, composed. Transport-free: `grpc.rs` converts
//! protobuf messages to and from these calls.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tracing::{Instrument, instrument};
use vdm_kit::bus::{Event, EventBody, EventBus, Subscription};
use vdm_kit::cache::{Cache, CacheStore};
use vdm_kit::memo::Memo;
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::ResourceKind;

use crate::domain::{Owed, Page, PlayerQuest, Quest, QuestInput, QuestPatch, QuestStatus, positive_id};
use crate::error::{QuestError, QuestResult};
use crate::players::Players;
use crate::recent::{Base, RecentWrites};
use crate::store::outbox::Delivery;
use crate::store::{Created, QuestFilter, QuestStore, StoredPlayerQuest, Versioned};

/// How long a cached quest lives; every write to it also deletes it.
pub const QUEST_CACHE_TTL: Duration = Duration::from_secs(30);
/// The cache key naming the current generation of cached quest lists: a
/// quest write deletes it, so every list cached before the write is out
/// of reach at once (on every replica sharing the cache) and expires with
/// the TTL.
const LISTS_GENERATION: &str = "lists-generation";
/// How long this replica reuses a quest definition for its own work
/// (accepts, changes of progress, a player's quest list) before asking the
/// cache again. Under the mixed load those reads were a third of every
/// cache `GET`, for a handful of quests that hardly ever change. This
/// replica's own update or delete drops it at once; another replica's
/// change is seen within this.
pub const DEFINITION_REUSE: Duration = Duration::from_secs(2);
/// Definitions a replica keeps at most.
const DEFINITIONS_KEPT: usize = 10_000;
/// How long a player's quests, as this replica read them, are reused at
/// most. This replica's own writes are applied to them; another replica's
/// drop them when its `quest.updated` arrives. This bounds a lost event.
pub const PLAYER_QUESTS_REUSE: Duration = Duration::from_secs(10);
/// Players whose quests are kept at most.
const PLAYERS_KEPT: usize = 100_000;
/// Quests a player may have and still be kept (past it, each page is read).
const PLAYER_QUESTS_KEPT: u64 = 200;
/// Most ids one batch read may ask for.
pub const MAX_BATCH: usize = 100;
/// Attempts at a read-modify-write before giving up to a concurrent writer.
const MAX_ATTEMPTS: usize = 5;

/// Lock stripes serializing writes to one player quest within a process
/// (a power of two). A lock is held across the write's database round
/// trips, so under load two players sharing a stripe wait on each other's
/// pool waits: with 64 stripes and 400 writing players that queue was most
/// of a write's latency. 4,096 mutexes cost about 160 KB.
const WRITE_STRIPES: usize = 4096;

/// Quests and player progress, backed by the database and a cache.
#[derive(Clone)]
pub struct QuestService {
    store: QuestStore,
    cache: Cache,
    events: EventBus,
    /// The player service, for level requirements; `None` when not
    /// configured (quests above level 1 cannot be accepted then).
    players: Option<Players>,
    /// Concurrent writes to the same player quest queue here instead of
    /// failing their version check and retrying; the version check still
    /// guards against writers in other replicas.
    write_locks: Arc<[Mutex<()>]>,
    /// The player quests this replica wrote: the next write to one starts
    /// from it instead of a read.
    recent: Arc<RecentWrites>,
    /// Definitions as this replica's own writes and lists read them
    /// ([`DEFINITION_REUSE`]).
    definitions: Arc<Memo<i64, Arc<Quest>>>,
    /// Each player's quests as this replica last read them, for lists (the
    /// bootstrap's active quests): this replica's own writes are applied to
    /// them, another replica's drop them ([`PLAYER_QUESTS_REUSE`]). `None` marks a player with too many to
    /// keep, whose lists are read page by page without asking again.
    player_quests: Arc<Memo<i64, Option<Arc<[StoredPlayerQuest]>>>>,
    /// Wakes this process's reward relay when a completion queued a reward.
    rewards_queued: Arc<Notify>,
}

impl QuestService {
    /// Builds the service over a store, deriving its cache from `caches`;
    /// `players` reads levels for level requirements.
    pub fn new(store: QuestStore, caches: &CacheStore, events: EventBus, players: Option<Players>) -> QuestService {
        QuestService {
            store,
            events,
            players,
            cache: caches.cache("quest", QUEST_CACHE_TTL),
            write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            recent: Arc::new(RecentWrites::default()),
            definitions: Arc::new(Memo::new(DEFINITION_REUSE, DEFINITIONS_KEPT)),
            player_quests: Arc::new(Memo::new(PLAYER_QUESTS_REUSE, PLAYERS_KEPT)),
            rewards_queued: Arc::new(Notify::new()),
        }
    }

    /// Notified each time a completion queued a reward (the relay waits
    /// on it).
    pub fn rewards_queued(&self) -> Arc<Notify> {
        self.rewards_queued.clone()
    }

    /// Answers whether the database is reachable.
    pub async fn ready(&self) -> QuestResult<()> {
        self.store.ping().await
    }

    /// Creates a quest, or replays the result of an earlier request with the
    /// same idempotency key. Returns the quest and whether it was a replay.
    #[instrument(skip_all, fields(quest.id))]
    pub async fn create(
        &self,
        input: QuestInput,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> QuestResult<(Quest, bool)> {
        if let Some(key) = idempotency_key
            && (key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(QuestError::Invalid(
                "idempotency key must be 1 to 128 printable ASCII characters".to_owned(),
            ));
        }
        let new = crate::domain::NewQuest::parse(input)?;
        let (quest, replayed) = match self.store.create(&new, idempotency_key, now_ms).await? {
            Created::New(quest) => (quest, false),
            Created::Replayed(quest) => (quest, true),
        };
        tracing::Span::current().record("quest.id", quest.id);
        tracing::info!(quest.id = quest.id, replayed, "quest created");
        if !replayed {
            // Lists of quests (here and in gateways) now miss one.
            self.cache.delete(LISTS_GENERATION).await;
            self.publish_changed(quest.id).await;
        }
        Ok((quest, replayed))
    }

    /// Reads a quest through the cache.
    #[instrument(skip_all, fields(quest.id = id))]
    pub async fn get(&self, id: i64) -> QuestResult<Quest> {
        positive_id("id", id)?;
        self.cache
            .get_or_load(&id.to_string(), async {
                self.store.get(id).await?.ok_or(QuestError::QuestNotFound(id))
            })
            .await
    }

    /// A quest's definition for this replica's own work (accepts, changes
    /// of progress, a player's quest list): one read within
    /// [`DEFINITION_REUSE`] is reused, else it comes through the cache.
    /// Never an answer naming the quest (`GetQuest`, lists, a gateway's
    /// edge-cache refill): those use [`Self::get`].
    async fn definition(&self, id: i64) -> QuestResult<Arc<Quest>> {
        let ticket = match self.definitions.get(&id) {
            Ok(quest) => {
                metrics::counter!("vdm_quest_definition_reads_total", "source" => "replica").increment(1);
                return Ok(quest);
            }
            Err(ticket) => ticket,
        };
        metrics::counter!("vdm_quest_definition_reads_total", "source" => "cache").increment(1);
        let quest = Arc::new(self.get(id).await?);
        self.definitions.keep(id, quest.clone(), ticket);
        Ok(quest)
    }

    /// Changes a quest and drops its cache entry.
    #[instrument(skip_all, fields(quest.id = id))]
    pub async fn update(&self, id: i64, patch: QuestPatch, now_ms: i64) -> QuestResult<Quest> {
        positive_id("id", id)?;
        let current = self.store.get(id).await?.ok_or(QuestError::QuestNotFound(id))?;
        let updated = current.patched(patch, now_ms)?;
        let found = self.store.update(&updated).await?;
        self.definitions.forget(&id);
        self.cache.delete(&id.to_string()).await;
        self.cache.delete(LISTS_GENERATION).await;
        self.publish_changed(id).await;
        if !found {
            return Err(QuestError::QuestNotFound(id));
        }
        tracing::info!("quest updated");
        Ok(updated)
    }

    /// Deletes a quest and drops its cache entry.
    #[instrument(skip_all, fields(quest.id = id))]
    pub async fn delete(&self, id: i64) -> QuestResult<()> {
        positive_id("id", id)?;
        let found = self.store.delete(id).await?;
        self.definitions.forget(&id);
        self.recent.forget_quest(id);
        self.cache.delete(&id.to_string()).await;
        self.cache.delete(LISTS_GENERATION).await;
        self.publish_changed(id).await;
        if !found {
            return Err(QuestError::QuestNotFound(id));
        }
        tracing::info!("quest deleted");
        Ok(())
    }

    /// Reads up to [`MAX_BATCH`] quests; unknown ids are left out.
    #[instrument(skip_all, fields(count = ids.len()))]
    pub async fn batch_get(&self, ids: &[i64]) -> QuestResult<Vec<Quest>> {
        if ids.len() > MAX_BATCH {
            return Err(QuestError::Invalid(format!(
                "ids may hold at most {MAX_BATCH} ids, got {}",
                ids.len()
            )));
        }
        for id in ids {
            positive_id("ids", *id)?;
        }
        self.store.get_many(ids).await
    }

    /// Lists quests by region and giver, through the cache: a region's list
    /// is the same for every player (every bootstrap asks for it), and
    /// reading it from the database took two statements from the pool that
    /// the writes wait on.
    #[instrument(skip_all)]
    pub async fn list(
        &self,
        filter: QuestFilter,
        limit: u32,
        cursor: &str,
    ) -> QuestResult<(Vec<Quest>, Option<String>)> {
        for (field, value) in [("region_id", filter.region_id), ("giver_npc_id", filter.giver_npc_id)] {
            if let Some(id) = value {
                positive_id(field, id)?;
            }
        }
        let page = Page::parse(limit, cursor)?;
        let key = format!("{:?}:{:?}:{limit}:{cursor}", filter.region_id, filter.giver_npc_id);
        self.cache
            .get_or_load_listed(LISTS_GENERATION, &key, self.store.list(filter, page))
            .await
    }

    /// Accepts (or restarts) a quest for a player whose level meets the
    /// quest's requirement.
    #[instrument(skip_all, fields(player.id = player_id, quest.id = quest_id))]
    pub async fn accept(&self, player_id: i64, quest_id: i64, now_ms: i64) -> QuestResult<PlayerQuest> {
        positive_id("player_id", player_id)?;
        let quest = self.definition(quest_id).await?;
        self.check_level(player_id, &quest).await?;
        let _serialized = self.lock(player_id, quest_id).await;
        let mut remembered = true;
        for _ in 0..MAX_ATTEMPTS {
            let (existing, base) = self.base(player_id, &quest, remembered).await?;
            remembered = false;
            let version = existing.as_ref().map(|v| v.version);
            let accepted = match PlayerQuest::accept(existing.map(|v| v.quest), player_id, &quest, now_ms) {
                Ok(accepted) => accepted,
                // The remembered row may be behind another writer: the
                // database decides a refusal.
                Err(_) if base == Base::Remembered => continue,
                Err(err) => return Err(err),
            };
            if self.save(&quest, &accepted, version, &[]).await? {
                tracing::info!("quest accepted");
                self.publish_update(&accepted).await;
                return Ok(accepted);
            }
        }
        Err(QuestError::Contended { player_id, quest_id })
    }

    /// Refuses a player under the quest's level requirement. Every player
    /// is at least level 1, so only a higher requirement asks the player
    /// service (levels only rise: a level read now still holds at the write).
    async fn check_level(&self, player_id: i64, quest: &Quest) -> QuestResult<()> {
        let required = quest.level_requirement;
        if required <= 1 {
            return Ok(());
        }
        let Some(players) = &self.players else {
            return Err(QuestError::NoLevels {
                quest_id: quest.id,
                required,
            });
        };
        let level = players.level(player_id).await?;
        if level < required {
            return Err(QuestError::LevelTooLow {
                quest_id: quest.id,
                required,
                level,
            });
        }
        Ok(())
    }

    /// Adds progress to an objective of a player's active quest.
    #[instrument(skip_all, fields(player.id = player_id, quest.id = quest_id, objective.id = objective_id))]
    pub async fn advance(
        &self,
        player_id: i64,
        quest_id: i64,
        objective_id: i64,
        amount: u32,
        now_ms: i64,
    ) -> QuestResult<PlayerQuest> {
        self.modify(player_id, quest_id, |pq| pq.advance(objective_id, amount, now_ms))
            .await
    }

    /// Abandons a player's active quest.
    #[instrument(skip_all, fields(player.id = player_id, quest.id = quest_id))]
    pub async fn abandon(&self, player_id: i64, quest_id: i64, now_ms: i64) -> QuestResult<PlayerQuest> {
        self.modify(player_id, quest_id, |pq| pq.abandon(now_ms)).await
    }

    /// Read-modify-write of a player quest, retried when a concurrent writer
    /// changed the row in between (so no progress is ever lost).
    async fn modify(
        &self,
        player_id: i64,
        quest_id: i64,
        change: impl Fn(&mut PlayerQuest) -> QuestResult<()>,
    ) -> QuestResult<PlayerQuest> {
        positive_id("player_id", player_id)?;
        positive_id("quest_id", quest_id)?;
        // The definition gives the objectives' targets, so the read below
        // (when there is one) is one query.
        let quest = match self.definition(quest_id).await {
            Err(QuestError::QuestNotFound(_)) => return Err(QuestError::PlayerQuestNotFound { player_id, quest_id }),
            other => other?,
        };
        let _serialized = self.lock(player_id, quest_id).await;
        let mut remembered = true;
        for _ in 0..MAX_ATTEMPTS {
            let (current, base) = self.base(player_id, &quest, remembered).await?;
            remembered = false;
            let current = current.ok_or(QuestError::PlayerQuestNotFound { player_id, quest_id })?;
            let mut pq = current.quest;
            let before = pq.status;
            match change(&mut pq) {
                Ok(()) => {}
                // As in `accept`: only the database's row may refuse.
                Err(_) if base == Base::Remembered => continue,
                Err(err) => return Err(err),
            }
            let owed = owed(before, &pq, &quest);
            if self.save(&quest, &pq, Some(current.version), &owed).await? {
                if pq.status != before {
                    tracing::info!(from = %before, to = %pq.status, "player quest status changed");
                }
                for delivery in &owed {
                    tracing::info!(kind = delivery.kind(), delivery.id = %delivery.id(), "completion delivery queued");
                }
                if !owed.is_empty() {
                    self.rewards_queued.notify_one();
                }
                self.publish_update(&pq).await;
                return Ok(pq);
            }
        }
        Err(QuestError::Contended { player_id, quest_id })
    }

    /// The row a write to `player_id`'s `quest` starts from, with its
    /// version: the one this replica last wrote when `remembered` allows
    /// it and there is one, else the database's.
    async fn base(&self, player_id: i64, quest: &Quest, remembered: bool) -> QuestResult<(Option<Versioned>, Base)> {
        let hit = if remembered {
            self.recent.get(player_id, quest)
        } else {
            None
        };
        let (row, base) = match hit {
            Some(row) => (Some(row), Base::Remembered),
            None => (self.store.player_quest(player_id, quest).await?, Base::Read),
        };
        metrics::counter!("vdm_quest_write_bases_total", "base" => base.label()).increment(1);
        Ok((row, base))
    }

    /// Writes `pq` (and what it owes) if its row is still at `expected`
    /// (`None`: there is no row yet), and remembers what it wrote, in the
    /// player's kept quests too; a row found changed, or a write that
    /// failed, is forgotten.
    async fn save(
        &self,
        quest: &Quest,
        pq: &PlayerQuest,
        expected: Option<i64>,
        owed: &[Delivery],
    ) -> QuestResult<bool> {
        let ticket = self.player_quests.ticket();
        let saved = self.store.save_player_quest(pq, expected, owed).await;
        match saved {
            Ok(true) => {
                let version = expected.map_or(1, |version| version + 1);
                self.recent.put(quest, pq, version);
                let row = StoredPlayerQuest::written(pq, version);
                self.player_quests
                    .amend(&pq.player_id, ticket, |kept| *kept = with_row(kept.take(), row));
            }
            // A failed commit may still have landed.
            _ => {
                self.player_quests.forget(&pq.player_id);
                self.recent.forget(pq.player_id, pq.quest_id);
            }
        }
        saved
    }

    /// Tells the player's sockets (`quest.updated`), after the write committed.
    async fn publish_update(&self, pq: &PlayerQuest) {
        let event = Event {
            player_id: Some(pq.player_id),
            region_ids: Vec::new(),
            body: Some(EventBody::QuestUpdated(vdm_proto::quest::v1::PlayerQuest::from(
                pq.clone(),
            ))),
        };
        self.events.publish(event).await;
    }

    /// Tells gateways that a quest definition changed (`resource.changed`),
    /// after the write committed and this service's cache entry was
    /// dropped, so a gateway that refills at once reads the new quest.
    async fn publish_changed(&self, id: i64) {
        self.events
            .publish(Event::resource_changed(ResourceKind::Quest, id))
            .await;
    }

    async fn lock(&self, player_id: i64, quest_id: i64) -> tokio::sync::MutexGuard<'_, ()> {
        // Fibonacci hashing of both ids: the top bits pick the stripe.
        let mixed = ((player_id as u64) ^ (quest_id as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let stripe = (mixed >> (64 - WRITE_STRIPES.trailing_zeros())) as usize;
        self.write_locks[stripe].lock().await
    }

    /// Lists a player's quests, optionally by status: one statement, the
    /// objectives' targets taken from the cached definitions (the quest
    /// pool is where writes queue under load, and this list is in every
    /// bootstrap).
    #[instrument(skip_all, fields(player.id = player_id))]
    pub async fn list_player_quests(
        &self,
        player_id: i64,
        status: Option<QuestStatus>,
        limit: u32,
        cursor: &str,
    ) -> QuestResult<(Vec<PlayerQuest>, Option<String>)> {
        positive_id("player_id", player_id)?;
        let page = Page::parse(limit, cursor)?;
        let (rows, next) = match self.kept_player_quests(player_id).await? {
            Some(all) => {
                let rows = all
                    .iter()
                    .filter(|row| row.quest_id() > page.after_id() && status.is_none_or(|s| row.is(s)))
                    .take(page.limit as usize + 1)
                    .cloned()
                    .collect();
                page.finish(rows, StoredPlayerQuest::quest_id)
            }
            None => self.store.list_player_quests(player_id, status, page).await?,
        };
        // The definitions (all at once: a page may hold a hundred) give the
        // objectives' targets. A quest's player rows go with it; one
        // deleted since the read above is left out.
        let definitions = futures_util::future::join_all(rows.iter().map(|row| self.definition(row.quest_id()))).await;
        let mut quests = Vec::with_capacity(rows.len());
        for (row, definition) in rows.into_iter().zip(definitions) {
            let quest = match definition {
                Err(QuestError::QuestNotFound(_)) => continue,
                other => other?,
            };
            quests.push(row.with_definition(&quest)?);
        }
        Ok((quests, next))
    }

    /// A player's quests, kept by this replica or read whole; `None` for a
    /// player with too many to keep (remembered as such, so their lists
    /// are not read whole again before a drop).
    async fn kept_player_quests(&self, player_id: i64) -> QuestResult<Option<Arc<[StoredPlayerQuest]>>> {
        let ticket = match self.player_quests.get(&player_id) {
            Ok(rows) => {
                metrics::counter!("vdm_quest_player_quest_reads_total", "source" => "replica").increment(1);
                return Ok(rows);
            }
            Err(ticket) => ticket,
        };
        metrics::counter!("vdm_quest_player_quest_reads_total", "source" => "database").increment(1);
        // The read finishes and is kept even when the caller gives up on
        // it: a bootstrap stops waiting at its budget, and under load the
        // quest pool's queue can be longer than that. Dropped with the
        // caller, each such read was wasted, and the next bootstrap queued
        // for the same rows again.
        let (store, kept) = (self.store.clone(), Arc::clone(&self.player_quests));
        let read = tokio::spawn(
            async move {
                let rows: Option<Arc<[StoredPlayerQuest]>> = store
                    .all_player_quests(player_id, PLAYER_QUESTS_KEPT)
                    .await?
                    .map(Into::into);
                kept.keep(player_id, rows.clone(), ticket);
                Ok(rows)
            }
            .in_current_span(),
        );
        read.await.map_err(|err| {
            QuestError::Db(sea_orm::DbErr::Custom(format!(
                "reading the player's quests stopped: {err}"
            )))
        })?
    }

    /// Follows `subscription` until `stop`, dropping the quests of each
    /// player another replica's write changed (`quest.updated` of a row
    /// other than the one this replica last wrote), and every player's when
    /// deliveries were missed.
    pub async fn follow_player_quest_changes(&self, subscription: Subscription, stop: CancellationToken) {
        self.player_quests
            .follow(subscription, stop, "players' quests", |event| {
                match (&event.body, event.player_id) {
                    // Not this replica's own write, already in what it keeps.
                    (Some(EventBody::QuestUpdated(written)), Some(player_id)) if !self.recent.wrote(written) => {
                        Some(player_id)
                    }
                    _ => None,
                }
            })
            .await;
    }
}

/// A player's kept quests with `row` written in (in quest id order), or
/// `None` when that makes more than can be kept.
fn with_row(kept: Option<Arc<[StoredPlayerQuest]>>, row: StoredPlayerQuest) -> Option<Arc<[StoredPlayerQuest]>> {
    let mut rows = kept?.to_vec();
    match rows.binary_search_by_key(&row.quest_id(), StoredPlayerQuest::quest_id) {
        Ok(at) => rows[at] = row,
        Err(at) => rows.insert(at, row),
    }
    (rows.len() as u64 <= PLAYER_QUESTS_KEPT).then(|| rows.into())
}

/// What a change owes other services: the quest's reward and the giver's
/// disposition, when it completed the quest. The quest was read (from the
/// cache) at this write, so they are what the quest offered when the player
/// finished it.
fn owed(before: QuestStatus, pq: &PlayerQuest, quest: &Quest) -> Vec<Delivery> {
    if before == QuestStatus::Completed || pq.status != QuestStatus::Completed {
        return Vec::new();
    }
    let owed = Owed::for_completion(quest, pq.player_id);
    owed.reward
        .map(Delivery::Reward)
        .into_iter()
        .chain(owed.disposition.map(Delivery::Disposition))
        .collect()
}
