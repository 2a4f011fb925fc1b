//! This replica's memory of who knows what, in front of a talk's candidates
//! (a quarter of a game's requests) and a bootstrap's rumors: per NPC, the
//! newest rumors it knows; per player, the variant of each rumor they
//! heard, its region and since when. A talk joins the two in memory instead
//! of asking the database each time, and a player's known rumors are listed
//! from it.
//!
//! How each stays true:
//! - A player learns rumors only by talking (`RumorService::tell_player`):
//!   the replica that stored the telling adds it to the player's entry
//!   (or drops the entry, when another change may have come in between),
//!   and every other replica drops it when the bus carries the
//!   `rumor.heard` that telling publishes (the one that stored it already
//!   holds what the event says, and keeps its entry).
//! - An NPC learns rumors from ticks, which publish `rumor.spread` for
//!   their region (every replica drops every NPC's entry), and from a new
//!   rumor or a single spread, which drop at once on the replica that
//!   wrote and within [`NPC_TTL`] elsewhere.
//! - A replica that fell behind the bus drops everything.
//!
//! [`vdm_kit::memo::Memo`] keeps no read that raced a drop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use vdm_kit::bus::{EventBody, Heard, Subscription};
use vdm_kit::memo::{Memo, Source, Ticket};
use vdm_kit::shutdown::CancellationToken;

use crate::error::{RumorError, RumorResult};
use crate::store::{HeardRumor, RumorStore, TalkCandidate};

/// How long an NPC's rumors are reused at most: the bound on how late
/// another replica's new rumor or single spread reaches this one's talks.
pub const NPC_TTL: Duration = Duration::from_secs(2);
/// How long a player's rumors are reused at most (every change is dropped
/// by an event; this only bounds a lost one).
pub const PLAYER_TTL: Duration = Duration::from_secs(30);
/// NPCs kept at most.
const NPCS_KEPT: usize = 10_000;
/// Players kept at most.
const PLAYERS_KEPT: usize = 100_000;
/// Rumors a player may know and still be kept (past it, a talk asks the
/// database, which joins only the NPC's rumors).
const PLAYER_RUMORS_KEPT: u64 = 2_000;

/// The rumors a player heard, by rumor id.
pub type PlayerRumors = Arc<HashMap<i64, HeardRumor>>;

/// Who knows what, as this replica last read it.
pub struct Knowledge {
    store: RumorStore,
    /// An NPC's newest rumors, without the player's variants.
    npcs: Memo<i64, Arc<[TalkCandidate]>>,
    /// `None` marks a player who heard too much to keep: their talks ask
    /// the database's join without reading their rumors first.
    players: Memo<i64, Option<PlayerRumors>>,
}

impl Knowledge {
    /// An empty memory in front of `store`.
    pub fn new(store: RumorStore) -> Knowledge {
        Knowledge {
            store,
            npcs: Memo::new(NPC_TTL, NPCS_KEPT),
            players: Memo::new(PLAYER_TTL, PLAYERS_KEPT),
        }
    }

    /// What an NPC could tell a player: its newest rumors (at most
    /// `limit`), each with the player's variant of it, if any.
    pub async fn talk_candidates(&self, npc_id: i64, player_id: i64, limit: u64) -> RumorResult<Vec<TalkCandidate>> {
        let load = async { Ok::<_, RumorError>(Arc::from(self.store.npc_knowledge(npc_id, limit).await?)) };
        let (npc, source): (Arc<[TalkCandidate]>, _) = self.npcs.get_or_load(npc_id, load).await?;
        record("npc", source);
        if npc.is_empty() {
            return Ok(Vec::new());
        }
        let heard = self.player_rumors(player_id).await?;
        let Some(heard) = heard else {
            // Too much to keep: the database joins it.
            return self.store.talk_candidates(npc_id, player_id, limit).await;
        };
        Ok(npc
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|c| TalkCandidate {
                player_variant_id: heard.get(&c.rumor_id).map(|h| h.variant_id),
                ..c.clone()
            })
            .collect())
    }

    /// The rumors a player heard, kept or read whole; `None` for a player
    /// who heard too much to keep (remembered as such).
    pub async fn player_rumors(&self, player_id: i64) -> RumorResult<Option<PlayerRumors>> {
        let load = async {
            let heard = self.store.player_knowledge(player_id, PLAYER_RUMORS_KEPT).await?;
            Ok::<_, RumorError>(heard.map(Arc::new))
        };
        let (heard, source) = self.players.get_or_load(player_id, load).await?;
        record("player", source);
        Ok(heard)
    }

    /// A ticket for a telling this replica is about to store
    /// ([`Knowledge::player_heard`]).
    pub fn telling(&self) -> Ticket {
        self.players.ticket()
    }

    /// A telling begun under `ticket` stored that the player heard
    /// `rumor_id`: added to the player's entry, unless another change came
    /// in between (then the entry is dropped).
    pub fn player_heard(&self, player_id: i64, ticket: Ticket, rumor_id: i64, heard: HeardRumor) {
        self.players.amend(&player_id, ticket, |kept| {
            if let Some(rumors) = kept {
                Arc::make_mut(rumors).insert(rumor_id, heard);
                if rumors.len() as u64 > PLAYER_RUMORS_KEPT {
                    *kept = None;
                }
            }
        });
    }

    /// A player may have heard something this replica does not know of
    /// (a telling whose outcome is unknown).
    pub fn player_learnt(&self, player_id: i64) {
        self.players.forget(&player_id);
    }

    /// Whether the player's entry already holds `variant_id` of `rumor_id`
    /// (a `rumor.heard` that changes nothing here, such as this replica's
    /// own telling coming back).
    fn holds(&self, player_id: i64, rumor_id: i64, variant_id: i64) -> bool {
        matches!(
            self.players.get(&player_id),
            Ok(Some(rumors)) if rumors.get(&rumor_id).is_some_and(|h| h.variant_id == variant_id)
        )
    }

    /// An NPC heard something (stored by this replica); `None`: any NPC.
    pub fn npc_learnt(&self, npc_id: Option<i64>) {
        match npc_id {
            Some(id) => self.npcs.forget(&id),
            None => self.npcs.forget_all(),
        }
    }

    /// Follows `subscription` until `stop`, dropping what other replicas'
    /// tellings changed.
    pub async fn follow_tellings(&self, subscription: Subscription, stop: CancellationToken) {
        subscription
            .follow(stop, |heard| {
                match heard {
                    Heard::Event(event) => match event.body.as_ref() {
                        Some(EventBody::RumorHeard(heard)) => {
                            if let Some(player_id) = event.player_id
                                && !self.holds(player_id, heard.rumor_id, heard.variant_id)
                            {
                                self.player_learnt(player_id);
                            }
                        }
                        Some(EventBody::RumorSpread(_)) => self.npc_learnt(None),
                        _ => {}
                    },
                    Heard::Missed(missed) => {
                        tracing::warn!(
                            missed,
                            "rumor service fell behind the event bus; forgetting who knows what"
                        );
                        self.npcs.forget_all();
                        self.players.forget_all();
                    }
                }
                std::future::ready(())
            })
            .await;
    }
}

fn record(holder: &'static str, source: Source) {
    let source = source.label("memo", "database");
    metrics::counter!("vdm_rumor_knowledge_reads_total", "holder" => holder, "source" => source).increment(1);
}
