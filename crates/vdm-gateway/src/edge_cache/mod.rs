//! The edge read cache: the public read models a client asks for again and
//! again (a quest definition, an NPC, a region, the regions, the factions,
//! and pages of quests and NPCs) kept as ready-to-send bodies, one per
//! format (JSON, MessagePack), each with a strong `ETag`; and, for the
//! bootstrap's public parts, the services' answers themselves.
//!
//! Why it exists: a cached read that goes to the owning service costs a
//! gRPC hop, a service-side cache lookup and two encodings per request;
//! served from here it costs a map lookup and a copy-free body. A client
//! that already holds the body (`If-None-Match`) gets a 304 without one.
//!
//! How it stays true:
//! - Services publish `resource.changed` on the event bus after every
//!   committed write to these models (and the NPC service's `npc.moved`
//!   is read as a change of that NPC). Every replica hears the bus and
//!   drops what it holds of the resource (for quests and NPCs: the one id
//!   and every page of that kind; for regions and factions: all of the
//!   kind, since a region write changes its neighbours' bodies too).
//! - A replica that made a write itself drops the entries at once, without
//!   waiting for the bus.
//! - Every entry lives at most the TTL, so a lost event (a Redis outage, a
//!   listener that fell behind) cannot keep a stale body alive for longer.
//! - An entry still being read is renewed before the TTL ends it: a hit
//!   past the entry's refresh point (between half and four fifths of the
//!   TTL, spread per fill so entries filled together are not renewed
//!   together) answers the kept body and starts one fill in the background.
//!   Without it, every hot entry expired at once and each expiry put a
//!   service call (and often a database read) in front of a client: the
//!   tail of an otherwise cached read.
//! - A fill that was in flight when a change of its kind arrived answers
//!   its own callers but is not kept (a per-kind epoch, compared under the
//!   same lock that invalidation takes), and callers arriving after the
//!   change start a new fill instead of joining the old one.
//!
//! Only 200 answers are kept; errors pass through. Concurrent misses of one
//! key make one gRPC call (single flight). Memory is bounded by a byte
//! budget (moka's weigher counts each body), and a budget of 0 turns the
//! cache off (answers still carry ETags and honour `If-None-Match`).
//!
//! Per-player answers (a player's quests, dispositions) never come through
//! here: a key names a public resource and a form, never a caller, so only
//! answers that are the same for every caller use it. The bootstrap, which
//! is per player, takes only its public parts from here, as the services'
//! answers ([`EdgeCache::value`]) rather than bodies.
//!
//! Layout: this file holds the keys, the table of entries and fills, and
//! invalidation; `entry.rs` a kept body and its answers (200 with ETag, or
//! 304), or a kept service answer; `events.rs` the bus listener and which
//! events are changes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use moka::notification::RemovalCause;
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::Instrument;
use vdm_proto::events::v1::ResourceKind;
use vdm_proto::npc::v1::ListNpcsRequest;
use vdm_proto::quest::v1::ListQuestsRequest;

use self::entry::Entry;
use crate::error::{GatewayError, GatewayResult};
use crate::negotiate::Format;

mod entry;
mod events;

/// The default byte budget: bodies of a few KiB, so thousands of entries.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;
/// The default TTL, the bound on staleness when an event is lost.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// The cache's settings.
#[derive(Debug, Clone)]
pub struct EdgeCacheConfig {
    /// The most bytes of bodies kept (`VDM_EDGE_CACHE_BYTES`, default
    /// 32 MiB); 0 turns the cache off.
    pub max_bytes: u64,
    /// How long an entry is kept at most (`VDM_EDGE_CACHE_TTL_SECS`,
    /// default 30 s).
    pub ttl: Duration,
}

impl Default for EdgeCacheConfig {
    fn default() -> EdgeCacheConfig {
        EdgeCacheConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            ttl: DEFAULT_TTL,
        }
    }
}

/// The kind of public read model an entry holds: what a change event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Quest definitions.
    Quest = 0,
    /// NPCs.
    Npc = 1,
    /// Regions.
    Region = 2,
    /// Factions and their relations.
    Faction = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Quest, Kind::Npc, Kind::Region, Kind::Faction];

    fn label(self) -> &'static str {
        match self {
            Kind::Quest => "quest",
            Kind::Npc => "npc",
            Kind::Region => "region",
            Kind::Faction => "faction",
        }
    }

    fn from_proto(kind: ResourceKind) -> Option<Kind> {
        match kind {
            ResourceKind::Quest => Some(Kind::Quest),
            ResourceKind::Npc => Some(Kind::Npc),
            ResourceKind::Region => Some(Kind::Region),
            ResourceKind::Faction => Some(Kind::Faction),
            ResourceKind::Unspecified | ResourceKind::Item => None,
        }
    }
}

/// A cacheable public resource: the same answer for every caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `GET /v1/quests/{id}`.
    Quest(i64),
    /// A page of `GET /v1/quests`, by its normalized query.
    Quests(Box<str>),
    /// `GET /v1/npcs/{id}`.
    Npc(i64),
    /// A page of `GET /v1/npcs`, by its normalized query.
    Npcs(Box<str>),
    /// `GET /v1/world/regions/{id}`.
    Region(i64),
    /// `GET /v1/world/regions`.
    Regions,
    /// `GET /v1/world/factions`.
    Factions,
}

impl Resource {
    /// A page of NPCs, keyed on what the NPC service is asked, so
    /// spellings of one query share an entry.
    pub fn npc_page(request: &ListNpcsRequest) -> Resource {
        Resource::Npcs(
            format!(
                "{:?}/{:?}/{}/{}",
                request.region_id, request.faction_id, request.limit, request.cursor
            )
            .into(),
        )
    }

    /// A page of quests, keyed on what the quest service is asked.
    pub fn quest_page(request: &ListQuestsRequest) -> Resource {
        Resource::Quests(
            format!(
                "{:?}/{:?}/{}/{}",
                request.region_id, request.giver_npc_id, request.limit, request.cursor
            )
            .into(),
        )
    }

    /// The kind whose changes drop it.
    fn kind(&self) -> Kind {
        match self {
            Resource::Quest(_) | Resource::Quests(_) => Kind::Quest,
            Resource::Npc(_) | Resource::Npcs(_) => Kind::Npc,
            Resource::Region(_) | Resource::Regions => Kind::Region,
            Resource::Factions => Kind::Faction,
        }
    }

    /// The metric label (bounded: never an id).
    fn label(&self) -> &'static str {
        match self {
            Resource::Quest(_) => "quest",
            Resource::Quests(_) => "quests",
            Resource::Npc(_) => "npc",
            Resource::Npcs(_) => "npcs",
            Resource::Region(_) => "region",
            Resource::Regions => "regions",
            Resource::Factions => "factions",
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Resource::Quests(_) | Resource::Npcs(_) | Resource::Regions)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    resource: Resource,
    form: Form,
}

/// What an entry keeps of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Form {
    /// The body a route answers, in this format.
    Body(Format),
    /// The service's answer as it came ([`EdgeCache::value`]).
    Value,
}

impl Form {
    const ALL: [Form; 3] = [Form::Body(Format::Json), Form::Body(Format::Msgpack), Form::Value];
}

/// What a fill ends with, shared by every caller that joined it.
type Outcome = Result<Arc<Entry>, Arc<GatewayError>>;
type Flight = Shared<BoxFuture<'static, Outcome>>;

/// Fills in flight, and the epoch of each kind (bumped by every change).
#[derive(Default)]
struct Flights {
    next_id: u64,
    by_key: HashMap<Key, (u64, Flight)>,
    epochs: [u64; 4],
}

struct Inner {
    entries: moka::future::Cache<Key, Arc<Entry>>,
    /// How long an entry lives; its refresh point is a fraction of it.
    ttl: Duration,
    flights: Mutex<Flights>,
    /// The weight of what `entries` holds, kept by insertions and the
    /// eviction listener (moka's own figure lags its maintenance).
    bytes: Arc<AtomicU64>,
}

/// A kept body [`EdgeCache::fresh`] found.
pub struct Hit {
    entry: Arc<Entry>,
    label: &'static str,
}

impl Hit {
    /// The body's size in bytes.
    pub fn body_len(&self) -> usize {
        self.entry.body_len().unwrap_or(0)
    }

    /// The 200 with the body, or a 304 when `request` names its ETag;
    /// counted as a hit, in the current span too.
    pub fn answer(self, request: &HeaderMap) -> Response {
        counted(self.label, "hit");
        self.entry.respond(request)
    }
}

/// The request headers the cache reads (`If-None-Match`), taken out of
/// the request without copying the rest of its headers.
pub struct Conditional(pub HeaderMap);

impl<S: Send + Sync> FromRequestParts<S> for Conditional {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Conditional, Self::Rejection> {
        let mut kept = HeaderMap::new();
        for value in parts.headers.get_all(header::IF_NONE_MATCH) {
            kept.append(header::IF_NONE_MATCH, value.clone());
        }
        Ok(Conditional(kept))
    }
}

/// The cache; cheap to clone. A disabled cache (budget 0) fetches every
/// time.
#[derive(Clone)]
pub struct EdgeCache {
    inner: Option<Arc<Inner>>,
}

impl EdgeCache {
    /// A cache with these settings (off when the budget is 0).
    pub fn new(config: &EdgeCacheConfig) -> EdgeCache {
        if config.max_bytes == 0 {
            return EdgeCache { inner: None };
        }
        let bytes = Arc::new(AtomicU64::new(0));
        let on_removal = bytes.clone();
        let entries = moka::future::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_key: &Key, entry: &Arc<Entry>| entry.weight())
            .time_to_live(config.ttl)
            .support_invalidation_closures()
            .eviction_listener(move |_key, entry: Arc<Entry>, cause| {
                let left = on_removal
                    .fetch_sub(u64::from(entry.weight()), Ordering::AcqRel)
                    .saturating_sub(u64::from(entry.weight()));
                metrics::gauge!("vdm_edge_cache_bytes").set(left as f64);
                let cause = match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    // Explicit removals are counted as invalidations;
                    // replacements are refills.
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                metrics::counter!("vdm_edge_cache_evictions_total", "cause" => cause).increment(1);
            })
            .build();
        EdgeCache {
            inner: Some(Arc::new(Inner {
                entries,
                ttl: config.ttl,
                flights: Mutex::new(Flights::default()),
                bytes,
            })),
        }
    }

    /// Answers a read of `resource` in `format`: the kept body (or a 304),
    /// else `load`'s answer, encoded, kept when it is a 200 and no change
    /// of its kind arrived meanwhile. Concurrent misses of one key share
    /// one `load`. Errors are answered, never kept.
    pub async fn serve<T, F, Fut>(&self, resource: Resource, format: Format, request: &HeaderMap, load: F) -> Response
    where
        T: Serialize + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = GatewayResult<T>> + Send + 'static,
    {
        let encoded = move || {
            let loading = load();
            async move { loading.await.and_then(|value| Entry::encode(format, &value)) }
        };
        let Some(inner) = &self.inner else {
            return match encoded().await {
                Ok(entry) => entry.respond(request),
                Err(err) => err.into_response(),
            };
        };
        let key = Key {
            resource,
            form: Form::Body(format),
        };
        match inner.kept_or_filled(key, encoded).await {
            Ok(entry) => entry.respond(request),
            Err(err) => duplicate(&err).into_response(),
        }
    }

    /// The kept body of `resource` in `format`, when there is one and it is
    /// not yet due for renewal: what the gateway's front answers without
    /// the router. Starts no fill and counts nothing: [`Hit::answer`]
    /// counts the hit once it is answered.
    pub fn fresh(&self, resource: Resource, format: Format) -> Option<Hit> {
        let inner = self.inner.as_ref()?;
        let label = resource.label();
        let key = Key {
            resource,
            form: Form::Body(format),
        };
        // A read never waits in moka; should it ever, the router's path
        // answers instead.
        let entry = inner.entries.get(&key).now_or_never().flatten()?;
        if entry.refresh_due() || entry.body_len().is_none() {
            return None;
        }
        Some(Hit { entry, label })
    }

    /// A service's answer about a public `resource`, as a composed answer
    /// (the bootstrap) takes it: the kept one, else `load`'s, kept when no
    /// change of its kind arrived meanwhile. Kept, filled, renewed and
    /// dropped as the bodies [`EdgeCache::serve`] keeps, and weighed by its
    /// encoded size. Errors are returned, never kept.
    pub async fn value<M, F, Fut>(&self, resource: Resource, load: F) -> GatewayResult<Arc<M>>
    where
        M: prost::Message + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = GatewayResult<M>> + Send + 'static,
    {
        let held = move || {
            let loading = load();
            async move {
                let value = loading.await?;
                let size = value.encoded_len();
                Ok(Entry::value(Arc::new(value), size))
            }
        };
        let Some(inner) = &self.inner else {
            return held().await?.held_value().ok_or_else(mismatch);
        };
        let key = Key {
            resource,
            form: Form::Value,
        };
        match inner.kept_or_filled(key, held).await {
            Ok(entry) => entry.held_value().ok_or_else(mismatch),
            Err(err) => Err(duplicate(&err)),
        }
    }

    /// Drops what the cache holds of a changed resource: for a quest or an
    /// NPC with an id, that one in every form and every page of its
    /// kind; otherwise every entry of the kind. Fills of the kind in flight
    /// are not kept.
    pub async fn invalidate(&self, kind: Kind, id: i64) {
        let Some(inner) = &self.inner else { return };
        inner.forget_flights(&[kind]).await;
        match kind {
            Kind::Quest | Kind::Npc if id > 0 => {
                let one = if kind == Kind::Quest {
                    Resource::Quest(id)
                } else {
                    Resource::Npc(id)
                };
                for form in Form::ALL {
                    inner
                        .entries
                        .invalidate(&Key {
                            resource: one.clone(),
                            form,
                        })
                        .await;
                }
                inner.drop_where(move |key| key.resource.kind() == kind && key.resource.is_list());
            }
            _ => inner.drop_where(move |key| key.resource.kind() == kind),
        }
        metrics::counter!("vdm_edge_cache_invalidations_total", "kind" => kind.label()).increment(1);
        tracing::debug!(kind = kind.label(), id, "edge cache invalidated");
    }

    /// Drops everything: for a change the cache cannot place, or events
    /// that may have been missed.
    pub async fn clear(&self) {
        let Some(inner) = &self.inner else { return };
        inner.forget_flights(&Kind::ALL).await;
        inner.entries.invalidate_all();
        metrics::counter!("vdm_edge_cache_invalidations_total", "kind" => "all").increment(1);
    }
}

impl Inner {
    /// The kept entry of `key` (renewed in the background when due), else
    /// the outcome of its fill: the one in flight, or a new one of `fill`.
    async fn kept_or_filled<F, Fut>(self: &Arc<Inner>, key: Key, fill: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = GatewayResult<Entry>> + Send + 'static,
    {
        let label = key.resource.label();
        if let Some(entry) = self.entries.get(&key).await {
            counted(label, "hit");
            if entry.refresh_due() {
                self.refresh(key, fill);
            }
            return Ok(entry);
        }
        let (flight, leads) = self.flight(key, fill).await;
        counted(label, if leads { "miss" } else { "joined" });
        flight.await
    }

    /// The fill of `key`: the one in flight, or a new one running `fill`
    /// (then `true`: this caller leads it).
    async fn flight<F, Fut>(self: &Arc<Inner>, key: Key, fill: F) -> (Flight, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = GatewayResult<Entry>> + Send + 'static,
    {
        let mut flights = self.flights.lock().await;
        if let Some((_, flight)) = flights.by_key.get(&key) {
            return (flight.clone(), false);
        }
        (self.start(&mut flights, key, fill()), true)
    }

    /// Renews `key` in the background unless a fill of it is in flight
    /// (or the table of fills is busy: a later hit will ask again). The
    /// callers keep being answered the kept body meanwhile.
    fn refresh<F, Fut>(self: &Arc<Inner>, key: Key, fill: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = GatewayResult<Entry>> + Send + 'static,
    {
        let Ok(mut flights) = self.flights.try_lock() else {
            return;
        };
        if flights.by_key.contains_key(&key) {
            return;
        }
        let label = key.resource.label();
        drop(self.start(&mut flights, key, fill()));
        metrics::counter!("vdm_edge_cache_refreshes_total", "resource" => label).increment(1);
    }

    /// Starts fill `key` running `fill` on a task of its own and enters it
    /// in the table of fills (held locked by the caller).
    fn start<Fut>(self: &Arc<Inner>, flights: &mut Flights, key: Key, fill: Fut) -> Flight
    where
        Fut: Future<Output = GatewayResult<Entry>> + Send + 'static,
    {
        let id = flights.next_id;
        flights.next_id += 1;
        let epoch = flights.epochs[key.resource.kind() as usize];
        let span = tracing::info_span!(
            "edge_cache_fill",
            cache.resource = key.resource.label(),
            cache.kept = tracing::field::Empty,
        );
        let inner = self.clone();
        let landing = key.clone();
        let refresh_after = refresh_after(self.ttl, id);
        let flight = async move {
            let outcome: Outcome = fill
                .await
                .map(|entry| Arc::new(entry.refresh_from(Instant::now() + refresh_after)))
                .map_err(Arc::new);
            inner.land(landing, id, epoch, &outcome).await;
            outcome
        }
        .instrument(span)
        .boxed()
        .shared();
        flights.by_key.insert(key, (id, flight.clone()));
        // Driven by a task of its own: a fill whose callers all went away
        // (a client that hung up, the request timeout) still ends, leaves
        // the table of fills and keeps its answer for the next caller.
        tokio::spawn(flight.clone());
        flight
    }

    /// Ends fill `id` of `key`: no longer joinable, and its entry kept
    /// unless the fill failed or a change of its kind came meanwhile.
    async fn land(&self, key: Key, id: u64, epoch: u64, outcome: &Outcome) {
        let mut flights = self.flights.lock().await;
        if flights.by_key.get(&key).is_some_and(|(current, _)| *current == id) {
            flights.by_key.remove(&key);
        }
        let Ok(entry) = outcome else { return };
        // Checked and inserted under the lock invalidation takes to bump
        // the epoch: an entry is either refused here or inserted before
        // the invalidation drops it.
        let current = flights.epochs[key.resource.kind() as usize] == epoch;
        tracing::Span::current().record("cache.kept", current);
        if !current {
            return;
        }
        let total = self.bytes.fetch_add(u64::from(entry.weight()), Ordering::AcqRel) + u64::from(entry.weight());
        self.entries.insert(key, entry.clone()).await;
        metrics::gauge!("vdm_edge_cache_bytes").set(total as f64);
    }

    /// Bumps the epochs of `kinds` and forgets their fills in flight, so
    /// their results are not kept and later callers start afresh.
    async fn forget_flights(&self, kinds: &[Kind]) {
        let mut flights = self.flights.lock().await;
        for kind in kinds {
            flights.epochs[*kind as usize] += 1;
        }
        flights.by_key.retain(|key, _| !kinds.contains(&key.resource.kind()));
    }

    fn drop_where(&self, predicate: impl Fn(&Key) -> bool + Send + Sync + 'static) {
        if let Err(err) = self.entries.invalidate_entries_if(move |key, _| predicate(key)) {
            // Only when closures are not enabled, which `new` does; drop
            // everything rather than keep what may be stale.
            tracing::error!(error = %err, "edge cache predicate refused; dropping every entry");
            self.entries.invalidate_all();
        }
    }
}

/// When fill `id`'s entry is due for renewal: between 1/2 and 4/5 of the
/// TTL, spread by a hash of the fill's id, so entries filled in one burst
/// (a warm-up, a cleared cache) are renewed over a stretch of time instead
/// of all at once.
fn refresh_after(ttl: Duration, id: u64) -> Duration {
    let spread = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as u32; // 0..1024
    ttl / 2 + ttl.mul_f64(0.3) * spread / 1024
}

fn counted(resource: &'static str, result: &'static str) {
    vdm_kit::metrics::static_counter(
        "vdm_edge_cache_requests_total",
        [("resource", resource), ("result", result)],
    )
    .increment(1);
    tracing::Span::current().record("edge_cache", result);
}

/// A kept value of another type than asked for: two callers named one
/// resource for different service answers.
fn mismatch() -> GatewayError {
    GatewayError::Internal("edge cache value of another type".to_owned())
}

/// The error of a shared fill, for each caller that joined it.
fn duplicate(err: &GatewayError) -> GatewayError {
    match err {
        GatewayError::Api { code, message } => GatewayError::api(*code, message.clone()),
        GatewayError::Grpc(status) => GatewayError::Grpc(status.clone()),
        other => GatewayError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicUsize;

    use axum::http::{StatusCode, header};

    use super::*;

    #[derive(Serialize)]
    struct Body {
        n: u32,
    }

    /// `{"n":1}` is 7 bytes; an entry weighs its body and an overhead.
    const ENTRY_BODY_AT_LEAST: u64 = 7;

    fn cache() -> EdgeCache {
        EdgeCache::new(&EdgeCacheConfig::default())
    }

    async fn read(cache: &EdgeCache, calls: &Arc<AtomicUsize>, n: u32, request: &HeaderMap) -> Response {
        let calls = calls.clone();
        cache
            .serve(Resource::Quest(1), Format::Json, request, move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Body { n })
            })
            .await
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_call_and_a_change_drops_the_entry() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let none = HeaderMap::new();
        let answers = futures_util::future::join_all((0..8).map(|_| read(&cache, &calls, 1, &none))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fill for eight misses");
        let etag = answers[0].headers()[header::ETAG].clone();
        assert!(
            answers
                .iter()
                .all(|a| a.status() == StatusCode::OK && a.headers()[header::ETAG] == etag)
        );
        read(&cache, &calls, 1, &none).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a hit");
        let kept = cache.inner.as_ref().map(|inner| inner.bytes.load(Ordering::Acquire));
        assert!(
            kept.is_some_and(|bytes| bytes > ENTRY_BODY_AT_LEAST),
            "the kept body is counted: {kept:?}"
        );

        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, etag.clone());
        let not_modified = read(&cache, &calls, 1, &conditional).await;
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], etag);

        cache.invalidate(Kind::Quest, 1).await;
        let changed = read(&cache, &calls, 2, &conditional).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "refilled after the change");
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()[header::ETAG], etag);
    }

    #[tokio::test]
    async fn a_fill_overtaken_by_a_change_is_not_kept() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let none = HeaderMap::new();
        let (stale, ()) = tokio::join!(read(&cache, &calls, 1, &none), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            cache.invalidate(Kind::Quest, 1).await;
        });
        assert_eq!(stale.status(), StatusCode::OK);
        read(&cache, &calls, 2, &none).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the overtaken fill was not kept");
    }

    #[tokio::test]
    async fn a_fill_whose_caller_left_still_lands() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let none = HeaderMap::new();
        // The caller gives up before the 20 ms load ends.
        let gave_up = tokio::time::timeout(Duration::from_millis(5), read(&cache, &calls, 1, &none)).await;
        assert!(gave_up.is_err());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(read(&cache, &calls, 1, &none).await.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the abandoned fill was kept");
    }

    #[tokio::test]
    async fn a_hot_entry_is_renewed_in_the_background_before_its_ttl_ends() {
        let cache = EdgeCache::new(&EdgeCacheConfig {
            ttl: Duration::from_millis(1000),
            ..EdgeCacheConfig::default()
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let none = HeaderMap::new();
        let first = read(&cache, &calls, 1, &none).await;
        // Past every refresh point (at most 4/5 of the TTL), before the TTL:
        // answered the kept body (a caller that waited for the renewal would
        // get the new one).
        tokio::time::sleep(Duration::from_millis(850)).await;
        let kept = read(&cache, &calls, 2, &none).await;
        assert_eq!(kept.headers()[header::ETAG], first.headers()[header::ETAG]);
        // The renewal lands and the first fill's TTL ends: reads still hit,
        // now the renewed body.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let renewed = read(&cache, &calls, 3, &none).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one renewal, no miss");
        assert_ne!(renewed.headers()[header::ETAG], first.headers()[header::ETAG]);
    }

    #[test]
    fn refresh_points_spread_between_half_and_four_fifths_of_the_ttl() {
        let ttl = Duration::from_secs(30);
        let points: Vec<Duration> = (0..1000).map(|id| refresh_after(ttl, id)).collect();
        assert!(points.iter().all(|p| *p >= ttl / 2 && *p <= ttl.mul_f64(0.8)));
        let early = points.iter().filter(|p| **p < ttl.mul_f64(0.65)).count();
        assert!(
            (300..700).contains(&early),
            "spread, not clustered: {early} of 1000 early"
        );
    }

    #[tokio::test]
    async fn kept_service_answers_are_shared_apart_from_bodies_and_dropped_by_changes() {
        use vdm_proto::world::v1::GetRegionRequest;

        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let page = Resource::Npcs("region 1".into());
        let value = |id: i64| {
            let calls = calls.clone();
            cache.value(page.clone(), move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(GetRegionRequest { id })
            })
        };
        let answers = futures_util::future::join_all((0..4).map(|_| value(1))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fill for four misses");
        assert!(answers.iter().all(|a| a.as_ref().unwrap().id == 1));
        assert_eq!(value(2).await.unwrap().id, 1, "a hit");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // The page's body is an entry of its own.
        let calls_before = calls.load(Ordering::SeqCst);
        let body = cache
            .serve(page.clone(), Format::Json, &HeaderMap::new(), || async {
                Ok(Body { n: 9 })
            })
            .await;
        assert_eq!(body.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), calls_before);
        assert_eq!(value(3).await.unwrap().id, 1, "still the kept answer");

        // A change of one NPC drops every page of NPCs, answers included.
        cache.invalidate(Kind::Npc, 42).await;
        assert_eq!(value(4).await.unwrap().id, 4);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn errors_are_not_kept() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let calls = calls.clone();
            let answer = cache
                .serve(
                    Resource::Npc(3),
                    Format::Msgpack,
                    &HeaderMap::new(),
                    move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Err::<Body, _>(GatewayError::Grpc(tonic::Status::not_found("no npc")))
                    },
                )
                .await;
            assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
