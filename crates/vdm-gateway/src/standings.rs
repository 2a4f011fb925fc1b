//! A player's faction standings as an NPC talk needs them: reused by this
//! replica for a few seconds instead of asked of the player service on
//! every talk.
//!
//! Why: a talk (a quarter of a Unity client's requests) asks the player
//! service for the standings before the rumor service answers, and the
//! standings change only when a reward or an operator's grant lands. That
//! call and its cache read were a tenth of what a talk cost.
//!
//! How it stays true: the player service publishes `player.updated` after
//! every change it commits, and every replica drops that player's entry
//! when it hears it (all entries when it fell behind the bus). An entry
//! lives at most [`STANDINGS_REUSE`], the bound when an event is lost. A
//! read that raced a drop is not kept ([`vdm_kit::memo`]).
//!
//! Only the talk route reads through here, to choose how an NPC talks;
//! `GET /v1/me/factions` still asks the player service, so a player always
//! reads their own standings as committed.

use std::sync::Arc;
use std::time::Duration;

use vdm_kit::bus::{EventBody, EventBus};
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::memo::Memo;
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::player::v1 as player_pb;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;
use vdm_proto::rumor::v1::FactionStanding;

/// How long a replica reuses a player's standings when no change is heard.
pub const STANDINGS_REUSE: Duration = Duration::from_secs(5);
/// The most players whose standings a replica keeps (past it, it starts
/// over: an entry only saves a call).
const STANDINGS_KEPT: usize = 50_000;

/// See the module docs; cheap to clone.
#[derive(Clone)]
pub struct Standings {
    memo: Arc<Memo<i64, Arc<[FactionStanding]>>>,
}

impl Default for Standings {
    fn default() -> Standings {
        Standings {
            memo: Arc::new(Memo::new(STANDINGS_REUSE, STANDINGS_KEPT)),
        }
    }
}

impl Standings {
    /// The player's standings with factions. A player service that cannot
    /// answer leaves them out (every NPC is then neutral, and nothing is
    /// kept): talking does not fail for it.
    pub async fn of(&self, player: &PlayerServiceClient<GrpcChannel>, player_id: i64) -> Arc<[FactionStanding]> {
        let ticket = match self.memo.get(&player_id) {
            Ok(standings) => {
                metrics::counter!("vdm_gateway_standings_reads_total", "source" => "replica").increment(1);
                return standings;
            }
            Err(ticket) => ticket,
        };
        metrics::counter!("vdm_gateway_standings_reads_total", "source" => "service").increment(1);
        let request = player_pb::ListStandingsRequest { player_id };
        let standings: Arc<[FactionStanding]> = match player.clone().list_standings(request).await {
            Ok(answer) => answer
                .into_inner()
                .standings
                .into_iter()
                .map(|s| FactionStanding {
                    faction_id: s.faction_id,
                    standing: s.standing,
                })
                .collect(),
            Err(status) if status.code() == tonic::Code::NotFound => return Arc::from([]),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "standings unavailable; the npc talks as to a neutral player");
                return Arc::from([]);
            }
        };
        self.memo.keep(player_id, standings.clone(), ticket);
        standings
    }

    /// Follows the event bus until `shutdown`, dropping a player's entry
    /// when `player.updated` says their balances changed.
    pub fn spawn_listener(&self, bus: &EventBus, shutdown: CancellationToken) {
        let (memo, subscription) = (self.memo.clone(), bus.subscribe());
        tokio::spawn(async move {
            memo.follow(subscription, shutdown, "standings", |event| match &event.body {
                Some(EventBody::PlayerUpdated(profile)) => Some(profile.player_id),
                _ => None,
            })
            .await;
        });
    }
}
