//! The rumor service's use cases: validation (domain), the NPC and world
//! checks (over gRPC), the transformer pipeline and storage, composed.
//! Transport-free: `grpc.rs` converts protobuf messages to and from these
//! calls.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tracing::instrument;
use vdm_kit::bus::{Event, EventBody, EventBus};
use vdm_kit::idempotency::create_or_replay;
use vdm_kit::page::{Order, Page};
use vdm_kit::validate::positive_id;
use vdm_proto::events::v1::{RumorHeard, RumorSpread};

use crate::config::{MAX_TICK_TELLINGS, TickConfig};
use crate::domain::{
    Attitude, HOSTILE_BELOW, Holder, Known, NewRumor, Origin, Rng, Rumor, RumorInput, Traits, Variant, distortion_step,
    hash_parts, plan_tick, retold_distortion, truth_at,
};
use crate::error::{RumorError, RumorResult};
use crate::knowledge::{Knowledge, PlayerRumors};
use crate::peers::{NpcInfo, Peers};
use crate::store::{HeardRumor, NewVariant, RumorStore, Told};
use crate::transform::{Ask, Pipeline};

/// Knowledge rows one tick reads at most (newest rumors first).
const TICK_KNOWLEDGE_ROWS: u64 = 20_000;
/// NPCs of the region who know a rumor born of a world event from the start.
const EVENT_WITNESSES: u32 = 3;
/// Rumors an NPC considers when a player talks to it (newest first).
const TALK_CANDIDATES: u32 = 100;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// NPCs of the region considered.
    pub npcs: u32,
    /// NPCs that knew something.
    pub knowers: u32,
    /// Retellings stored.
    pub tellings: u32,
}

/// What an NPC told a player who talked to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Talk {
    /// How the NPC was disposed to talk.
    pub attitude: Attitude,
    /// Why it told nothing, when it was hostile.
    pub refusal: Option<String>,
    /// What it told, each with whether the player heard that rumor for the
    /// first time; empty when it knows nothing (or refused).
    pub told: Vec<(Variant, bool)>,
}

/// Rumors, their variants and who knows them.
#[derive(Clone)]
pub struct RumorService {
    store: RumorStore,
    knowledge: Arc<Knowledge>,
    peers: Peers,
    pipeline: Pipeline,
    events: EventBus,
    tick: TickConfig,
}

impl RumorService {
    /// Builds the service.
    pub fn new(
        store: RumorStore,
        peers: Peers,
        pipeline: Pipeline,
        events: EventBus,
        tick: TickConfig,
    ) -> RumorService {
        RumorService {
            knowledge: Arc::new(Knowledge::new(store.clone())),
            store,
            peers,
            pipeline,
            events,
            tick,
        }
    }

    /// Answers whether the database is reachable (the NPC and world
    /// services are not part of readiness: reads work without them).
    pub async fn ready(&self) -> RumorResult<()> {
        self.store.ping().await
    }

    /// Who knows what, as this replica keeps it (its background task
    /// follows other replicas' tellings on the bus).
    pub fn knowledge(&self) -> Arc<Knowledge> {
        Arc::clone(&self.knowledge)
    }

    /// Creates a rumor after checking its region and origin with the world
    /// and NPC services, or replays an earlier create with the same key.
    #[instrument(skip_all, fields(rumor.id))]
    pub async fn create(
        &self,
        input: RumorInput,
        idempotency_key: Option<&str>,
        now_ms: i64,
    ) -> RumorResult<(Rumor, bool)> {
        vdm_kit::validate::idempotency_key(idempotency_key)?;
        let new = NewRumor::parse(input)?;
        let fingerprint = new.fingerprint();
        let key = idempotency_key.map(|k| (k, fingerprint.as_str()));
        let created = create_or_replay(
            idempotency_key,
            |key| self.store.replay(key, &fingerprint),
            || async {
                let witnesses = self.witnesses(&new).await?;
                self.store.insert(&new, &witnesses, key, now_ms).await
            },
        )
        .await?;
        let replayed = !created.is_new();
        // Its first knowers know one rumor more.
        self.knowledge.npc_learnt(None);
        let rumor = created.into_inner();
        tracing::Span::current().record("rumor.id", rumor.id);
        tracing::info!(
            rumor.id = rumor.id,
            region.id = rumor.region_id,
            replayed,
            "rumor created"
        );
        Ok((rumor, replayed))
    }

    /// Checks a new rumor's region and origin with the world and NPC
    /// services; returns the NPCs who know it from the start.
    async fn witnesses(&self, new: &NewRumor) -> RumorResult<Vec<i64>> {
        self.peers.check_region(new.region_id).await?;
        match new.origin {
            Origin::Npc(id) => match self.peers.npc(id).await {
                Err(RumorError::NpcNotFound(id)) => {
                    return Err(RumorError::Invalid(format!("origin_npc_id names unknown npc {id}")));
                }
                other => drop(other?),
            },
            Origin::Event(id) => self.peers.check_event(id).await?,
        }
        // A rumor born of a world event starts with the NPCs who saw it: the
        // first few of its region.
        Ok(match new.origin {
            Origin::Npc(id) => vec![id],
            Origin::Event(_) => self
                .peers
                .npcs_in_region(new.region_id, EVENT_WITNESSES)
                .await?
                .into_iter()
                .map(|n| n.id)
                .collect(),
        })
    }

    /// Reads one rumor.
    #[instrument(skip_all, fields(rumor.id = id))]
    pub async fn get(&self, id: i64) -> RumorResult<Rumor> {
        positive_id("id", id)?;
        self.store.get(id).await?.ok_or(RumorError::RumorNotFound(id))
    }

    /// A rumor without its variant count (one query less): what a
    /// retelling needs.
    async fn rumor(&self, id: i64) -> RumorResult<Rumor> {
        self.store
            .rumors(&[id])
            .await?
            .remove(&id)
            .ok_or(RumorError::RumorNotFound(id))
    }

    /// One NPC tells another a rumor it knows. Returns the listener's
    /// variant and whether it knew the rumor already.
    #[instrument(skip_all, fields(rumor.id = rumor_id, teller.id = from, listener.id = to))]
    pub async fn spread(
        &self,
        rumor_id: i64,
        from: i64,
        to: i64,
        seed: u64,
        now_ms: i64,
    ) -> RumorResult<(Variant, bool)> {
        positive_id("rumor_id", rumor_id)?;
        positive_id("from_npc_id", from)?;
        positive_id("to_npc_id", to)?;
        if from == to {
            return Err(RumorError::Invalid("from_npc_id and to_npc_id must differ".to_owned()));
        }
        let rumor = self.rumor(rumor_id).await?;
        let (teller, listener) = self.peers.npc_pair(from, to).await?;
        let parent = self
            .store
            .known_variant(Holder::Npc(from), rumor_id)
            .await?
            .ok_or(RumorError::NotKnown { npc_id: from, rumor_id })?;
        if let Some(known) = self.store.known_variant(Holder::Npc(to), rumor_id).await? {
            return Ok((known, true));
        }
        let names = self.peers.names_in(rumor.region_id).await?;
        let places = self.peers.places().await?;
        let seed = hash_parts(&[&parent.id.to_le_bytes(), b"npc", &to.to_le_bytes(), &seed.to_le_bytes()]);
        let new = self
            .retell(
                &rumor,
                &parent,
                (from, teller.traits),
                Holder::Npc(to),
                listener.traits,
                seed,
                &names,
                &places,
            )
            .await;
        let told = self.store.tell(&new, now_ms).await?;
        self.knowledge.npc_learnt(Some(to));
        Ok(self.told(told, "spread"))
    }

    /// An NPC tells a player something it knows: the newest rumors the
    /// player has not heard (one, or up to [`crate::domain::FRIENDLY_SHARES`]
    /// when the NPC is friendly), else the newest it knows. Nothing when it
    /// knows nothing, or when it is hostile: the player's standing with its
    /// faction (`standings`, as the gateway read them from the player
    /// service) decides ([`Attitude`]). The retelling to a player does not
    /// depend on which player asks, so every player hearing the same NPC
    /// shares one transform.
    #[instrument(skip_all, fields(npc.id = npc_id, player.id = player_id, attitude))]
    pub async fn tell_player(
        &self,
        npc_id: i64,
        player_id: i64,
        standings: &[(i64, i32)],
        now_ms: i64,
    ) -> RumorResult<Talk> {
        positive_id("npc_id", npc_id)?;
        positive_id("player_id", player_id)?;
        let npc = self.peers.npc(npc_id).await?;
        let (attitude, standing) = Attitude::of(npc.faction_id, standings);
        tracing::Span::current().record("attitude", attitude.as_str());
        metrics::counter!("vdm_rumor_talks_total", "attitude" => attitude.as_str()).increment(1);
        let mut talk = Talk {
            attitude,
            refusal: None,
            told: Vec::new(),
        };
        if attitude == Attitude::Hostile {
            talk.refusal = Some(format!(
                "{} will not talk to you: your standing with their faction is {standing}, below {HOSTILE_BELOW}",
                npc.name
            ));
            tracing::info!(standing, "npc refused to talk to a player of low standing");
            return Ok(talk);
        }
        let candidates = self
            .knowledge
            .talk_candidates(npc_id, player_id, u64::from(TALK_CANDIDATES))
            .await?;
        let Some(newest) = candidates.first() else {
            return Ok(talk);
        };
        let fresh: Vec<_> = candidates
            .iter()
            .filter(|c| c.player_variant_id.is_none())
            .take(attitude.shares())
            .collect();
        if fresh.is_empty() {
            // Everything it knows, the player has heard: it repeats the newest.
            if let Some(id) = newest.player_variant_id {
                talk.told
                    .extend(self.store.variants(&[id]).await?.remove(&id).map(|v| (v, false)));
            }
            return Ok(talk);
        }
        let ids: Vec<i64> = fresh.iter().map(|c| c.variant_id).collect();
        let mut variants = self.store.variants(&ids).await?;
        let fresh = fresh.into_iter().filter_map(|c| {
            variants.remove(&c.variant_id).map(|variant| Known {
                variant,
                region_id: c.region_id,
                since_ms: c.since_ms,
            })
        });
        for known in fresh {
            talk.told.push(self.tell_one(&npc, &known, player_id, now_ms).await?);
        }
        Ok(talk)
    }

    /// Retells one rumor an NPC knows to a player, stores what the player
    /// heard and tells the player's sockets. Returns the variant and whether
    /// the player heard it for the first time.
    async fn tell_one(
        &self,
        npc: &NpcInfo,
        fresh: &Known,
        player_id: i64,
        now_ms: i64,
    ) -> RumorResult<(Variant, bool)> {
        let player = Holder::Player(player_id);
        let rumor = self.rumor(fresh.variant.rumor_id).await?;
        let names = self.peers.names_in(rumor.region_id).await?;
        let places = self.peers.places().await?;
        let seed = hash_parts(&[&fresh.variant.id.to_le_bytes(), b"player"]);
        let new = self
            .retell(
                &rumor,
                &fresh.variant,
                (npc.id, npc.traits),
                player,
                Traits::PLAYER,
                seed,
                &names,
                &places,
            )
            .await;
        let telling = self.knowledge.telling();
        let told = self.store.tell(&new, now_ms).await;
        match &told {
            Ok(Told::New(variant)) => self.knowledge.player_heard(
                player_id,
                telling,
                variant.rumor_id,
                HeardRumor {
                    variant_id: variant.id,
                    region_id: new.region_id,
                    since_ms: now_ms,
                },
            ),
            // Already known (by another replica's telling, whose event
            // drops the entry too), or an outcome unknown.
            _ => self.knowledge.player_learnt(player_id),
        }
        let (variant, already) = self.told(told?, "player");
        if !already {
            // The player's other sockets (and the game's journal) hear it too.
            self.events
                .publish(Event {
                    player_id: Some(player_id),
                    region_ids: Vec::new(),
                    body: Some(EventBody::RumorHeard(RumorHeard {
                        rumor_id: variant.rumor_id,
                        variant_id: variant.id,
                        npc_id: npc.id,
                        region_id: rumor.region_id,
                        text: variant.text.clone(),
                    })),
                })
                .await;
        }
        Ok((variant, !already))
    }

    /// What an NPC or a player knows, newest rumor first.
    #[instrument(skip_all, fields(holder.kind = holder.kind(), holder.id = holder.id()))]
    pub async fn list_known(
        &self,
        holder: Holder,
        region_id: Option<i64>,
        limit: u32,
        cursor: &str,
    ) -> RumorResult<(Vec<Known>, Option<String>)> {
        let field = match holder {
            Holder::Npc(_) => "npc_id",
            Holder::Player(_) => "player_id",
        };
        positive_id(field, holder.id())?;
        if let Some(region_id) = region_id {
            positive_id("region_id", region_id)?;
        }
        // Newest first.
        let page = Page::parse_ordered(limit, cursor, Order::Descending)?;
        if let Holder::Player(player_id) = holder
            && let Some(heard) = self.knowledge.player_rumors(player_id).await?
        {
            return self.known_from(&heard, region_id, page).await;
        }
        self.store.list_known(holder, region_id, page).await
    }

    /// A page of a player's known rumors from what this replica keeps of
    /// them, with the variants through the variant cache: the bootstrap
    /// asks for them every time, and the database's join was one of its
    /// statements.
    async fn known_from(
        &self,
        heard: &PlayerRumors,
        region_id: Option<i64>,
        page: Page,
    ) -> RumorResult<(Vec<Known>, Option<String>)> {
        let mut rows: Vec<(i64, HeardRumor)> = heard
            .iter()
            .filter(|(rumor_id, h)| {
                region_id.is_none_or(|region| h.region_id == region)
                    && page.from_id.is_none_or(|before| **rumor_id < before)
            })
            .map(|(rumor_id, h)| (*rumor_id, *h))
            .collect();
        rows.sort_unstable_by_key(|(rumor_id, _)| std::cmp::Reverse(*rumor_id));
        rows.truncate(page.limit as usize + 1);
        let (rows, next) = page.finish(rows, |(rumor_id, _)| *rumor_id);
        let ids: Vec<i64> = rows.iter().map(|(_, h)| h.variant_id).collect();
        let mut variants = self.store.variants(&ids).await?;
        // Variants are never deleted: one missing is left out, as the
        // database's join does.
        let known = rows
            .into_iter()
            .filter_map(|(_, h)| {
                variants.remove(&h.variant_id).map(|variant| Known {
                    variant,
                    region_id: h.region_id,
                    since_ms: h.since_ms,
                })
            })
            .collect();
        Ok((known, next))
    }

    /// One step of spreading in a region (see `domain::plan_tick`): reads
    /// the region's NPCs (NPC service), what they know (one query), the
    /// parent variants and rumors (two queries), transforms every retelling
    /// through the pipeline (batched), and stores them all in one
    /// transaction of two inserts.
    #[instrument(skip_all, fields(region.id = region_id, tellings))]
    pub async fn tick(&self, region_id: i64, max_tellings: u32, seed: u64, now_ms: i64) -> RumorResult<TickReport> {
        positive_id("region_id", region_id)?;
        if max_tellings > MAX_TICK_TELLINGS {
            return Err(RumorError::Invalid(format!(
                "max_tellings must be at most {MAX_TICK_TELLINGS}, got {max_tellings}"
            )));
        }
        let max_tellings = if max_tellings == 0 {
            self.tick.max_tellings
        } else {
            max_tellings
        };
        let started = Instant::now();
        self.peers.check_region(region_id).await?;
        let npcs = self.peers.npcs_in_region(region_id, self.tick.max_npcs).await?;
        let ids: Vec<i64> = npcs.iter().map(|n| n.id).collect();
        let rows = self.store.knowledge_of_npcs(&ids, TICK_KNOWLEDGE_ROWS).await?;
        let mut known: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for (npc, rumor, variant) in rows {
            known.entry(npc).or_default().push((rumor, variant));
        }
        let mut report = TickReport {
            npcs: npcs.len() as u32,
            knowers: known.len() as u32,
            tellings: 0,
        };
        let seed = if seed == 0 { now_ms as u64 } else { seed };
        let tick_npcs: Vec<_> = npcs.iter().map(|n| n.tick_npc()).collect();
        let plan = plan_tick(&tick_npcs, &known, max_tellings as usize, seed);
        if plan.is_empty() {
            return Ok(report);
        }

        let parent_ids: Vec<i64> = plan.iter().map(|t| t.parent_variant_id).collect();
        let rumor_ids: Vec<i64> = plan
            .iter()
            .map(|t| t.rumor_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let parents = self.store.variants(&parent_ids).await?;
        let rumors = self.store.rumors(&rumor_ids).await?;
        let traits: HashMap<i64, Traits> = npcs.iter().map(|n| (n.id, n.traits)).collect();
        let names = self.peers.learn_names(region_id, &npcs);
        // Without the world, retellings just swap no places.
        let places = self.peers.places().await.unwrap_or_default();

        let mut pending = Vec::with_capacity(plan.len());
        for telling in &plan {
            let (Some(parent), Some(rumor)) = (parents.get(&telling.parent_variant_id), rumors.get(&telling.rumor_id))
            else {
                continue;
            };
            let teller = traits.get(&telling.teller).copied().unwrap_or(Traits::PLAYER);
            let listener = traits.get(&telling.listener).copied().unwrap_or(Traits::PLAYER);
            let seed = hash_parts(&[
                &parent.id.to_le_bytes(),
                b"npc",
                &telling.listener.to_le_bytes(),
                &seed.to_le_bytes(),
            ]);
            pending.push(self.retell(
                rumor,
                parent,
                (telling.teller, teller),
                Holder::Npc(telling.listener),
                listener,
                seed,
                &names,
                &places,
            ));
        }
        let tellings: Vec<NewVariant> = futures_util::future::join_all(pending).await;
        let learnt = self.store.tell_many(&tellings, now_ms).await?;
        if learnt > 0 {
            self.knowledge.npc_learnt(None);
        }
        report.tellings = learnt as u32;
        metrics::counter!("vdm_rumor_tellings_total", "via" => "tick").increment(learnt);
        metrics::histogram!("vdm_rumor_tick_duration_seconds").record(started.elapsed().as_secs_f64());
        tracing::Span::current().record("tellings", report.tellings);
        tracing::info!(
            npcs = report.npcs,
            knowers = report.knowers,
            tellings = report.tellings,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rumor tick done"
        );
        if learnt > 0 {
            self.events
                .publish(Event {
                    player_id: None,
                    region_ids: vec![region_id],
                    body: Some(EventBody::RumorSpread(RumorSpread {
                        region_id,
                        tellings: report.tellings,
                    })),
                })
                .await;
        }
        Ok(report)
    }

    /// The new variant a retelling of `parent` makes for `listener`.
    #[allow(clippy::too_many_arguments)]
    async fn retell(
        &self,
        rumor: &Rumor,
        parent: &Variant,
        (teller_id, teller): (i64, Traits),
        listener: Holder,
        listener_traits: Traits,
        seed: u64,
        names: &[String],
        places: &[String],
    ) -> NewVariant {
        let step = distortion_step(teller, listener_traits, &mut Rng::new(seed));
        let ask = Ask {
            text: parent.text.clone(),
            teller,
            listener: listener_traits,
            intensity: step,
            seed,
            names: names.to_vec(),
            places: places.to_vec(),
        };
        let (transformed, _) = self.pipeline.transform(ask).await;
        let distortion = retold_distortion(parent.distortion, step);
        NewVariant {
            rumor_id: rumor.id,
            region_id: rumor.region_id,
            parent_id: parent.id,
            teller_npc_id: teller_id,
            listener,
            text: transformed.text,
            distortion,
            truth: truth_at(rumor.truth, distortion),
            transformer: transformed.by,
        }
    }

    fn told(&self, told: Told, via: &'static str) -> (Variant, bool) {
        match told {
            Told::New(variant) => {
                metrics::counter!("vdm_rumor_tellings_total", "via" => via).increment(1);
                tracing::info!(variant.id = variant.id, distortion = variant.distortion, "rumor retold");
                (variant, false)
            }
            Told::AlreadyKnown(variant) => (variant, true),
        }
    }
}
