//! `GET /v1/bootstrap?region_id=`: everything the client needs to render a
//! region, in one round trip.
//!
//! The gateway asks the services for every part at once (one `tokio::join!`,
//! so the answer takes about as long as the slowest call, not the sum), and
//! gives each call the same budget (`VDM_BOOTSTRAP_BUDGET_MS`). The public
//! parts (the region, its NPCs, the quests offered there) are the same for
//! every player: they come from the edge cache ([`crate::edge_cache::EdgeCache::value`]),
//! which keeps the services' answers and drops them on the same change
//! events as the routes' bodies, so a bootstrap asks the services only for
//! the player's own parts and the world clock. A part whose
//! service is down, fails, or is slower than the budget is left out and named
//! in `missing`; the rest still comes back (200). Only when every part is
//! missing is the answer a 503. A request the services refuse (an unknown
//! region, a bad id) is still that 4xx.
//!
//! The payload is the largest the client takes, so it is lean: NPCs without
//! their traits (the rumor service's business), the disposition inside each
//! NPC and only when not neutral, and every empty list, absent cursor and
//! empty `missing` left out.
//!
//! The rumors the player has heard in the region come from the rumor
//! service (`rumors`); a gateway without `VDM_RUMOR_URL` lists them missing.
//! The player's profile (`profile`: level, xp, gold, name; never the
//! inventory) comes from the player service, missing while it does not
//! answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tonic::Code;
use utoipa::{IntoParams, ToSchema};
use vdm_kit::ErrorCode;
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::player::v1 as player_pb;
use vdm_proto::quest::v1 as quest_pb;
use vdm_proto::rumor::v1 as rumor_pb;
use vdm_proto::world::v1 as world_pb;

use super::players::json::ProfileJson;
use super::quests::json::{PlayerQuestJson, QuestJson};
use super::shared::non_empty;
use super::world::{RegionJson, WorldTimeJson};
use crate::auth::Player;
use crate::edge_cache::Resource;
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Format, QueryArgs, Reply};
use crate::state::AppState;

/// The most NPCs, offered quests and active quests the bootstrap carries;
/// past it, the `*_next_cursor` fields continue on the list routes.
const PART_LIMIT: u32 = 100;

/// The parts of the bootstrap, as `missing` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The region (world service).
    Region,
    /// The world clock (world service).
    Time,
    /// The NPCs in the region (NPC service).
    Npcs,
    /// The player's dispositions with those NPCs (NPC service).
    Dispositions,
    /// The quests offered in the region (quest service).
    Quests,
    /// The player's active quests (quest service).
    ActiveQuests,
    /// The rumors the player has heard in the region (rumor service).
    Rumors,
    /// The player's profile (player service).
    Profile,
}

impl Part {
    /// Every part, in the order `missing` lists them.
    pub const ALL: [Part; 8] = [
        Part::Region,
        Part::Time,
        Part::Npcs,
        Part::Dispositions,
        Part::Quests,
        Part::ActiveQuests,
        Part::Rumors,
        Part::Profile,
    ];

    /// The name clients see in `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Region => "region",
            Part::Time => "time",
            Part::Npcs => "npcs",
            Part::Dispositions => "dispositions",
            Part::Quests => "quests",
            Part::ActiveQuests => "active_quests",
            Part::Rumors => "rumors",
            Part::Profile => "profile",
        }
    }
}

/// `GET /v1/bootstrap` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BootstrapQuery {
    /// The region to render.
    #[param(required = true, minimum = 1)]
    region_id: Option<i64>,
}

/// The bootstrap answer. Absent parts are left out (so are empty lists and
/// absent cursors); `missing` names the parts that failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BootstrapJson {
    /// The player's profile (not the inventory: `GET /v1/me/inventory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<ProfileJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<RegionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<WorldTimeJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    npcs: Vec<BootstrapNpcJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    npcs_next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quests: Vec<QuestJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quests_next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    active_quests: Vec<PlayerQuestJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_quests_next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rumors: Vec<HeardJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rumors_next_cursor: Option<String>,
    /// The parts whose service failed or was too slow; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = missing_parts)]
    missing: Vec<&'static str>,
}

/// The schema of `missing`: names of [`Part`]s.
fn missing_parts() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(Part::ALL.iter().map(|part| part.as_str()))),
        )
        .build()
}

/// A rumor the player has heard, as the bootstrap carries it: which rumor,
/// the words they heard, and from whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeardJson {
    rumor_id: i64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_npc_id: Option<i64>,
}

/// An NPC as the bootstrap carries it: where it stands, its faction, and
/// the player's disposition with it when not neutral (-100..=100).
#[derive(Debug, Serialize, ToSchema)]
pub struct BootstrapNpcJson {
    id: i64,
    name: String,
    q: i32,
    r: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    faction_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<i32>,
}

/// Everything the client needs to render a region, in one round trip: the
/// region, the world clock, its NPCs (with the player's dispositions), the
/// quests offered there, the player's active quests, and the rumors the
/// player has heard there. Each part is asked of its service at once, with
/// the same budget; a part that fails or is too slow is left out and named
/// in `missing`. It also carries the player's profile.
#[utoipa::path(
    get,
    path = "/v1/bootstrap",
    operation_id = "bootstrap",
    tag = "bootstrap",
    params(BootstrapQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The parts that came back in time; `missing` names the rest", body = BootstrapJson),
        (status = 400, description = "`region_id` is missing or not a positive id", body = ErrorBody),
        (status = 404, description = "No region has this id", body = ErrorBody),
        (status = 503, description = "No part of the bootstrap could be loaded", body = ErrorBody),
    ),
)]
pub async fn bootstrap(
    State(state): State<AppState>,
    Player(player_id): Player,
    format: Format,
    QueryArgs(q): QueryArgs<BootstrapQuery>,
) -> GatewayResult<Reply<BootstrapJson>> {
    let region_id = match q.region_id {
        Some(id) if id > 0 => id,
        Some(id) => {
            return Err(GatewayError::invalid(format!(
                "region_id must be a positive id, got {id}"
            )));
        }
        None => return Err(GatewayError::invalid("region_id is required")),
    };
    tracing::Span::current().record("region.id", region_id);
    let budget = state.bootstrap_budget;
    let mut world = state.world.clone();
    let mut npc = state.npc.clone();
    let mut quest = state.quest.clone();
    let rumor = state.rumor.clone();
    let mut player = state.player.clone();
    let npc_page = npc_pb::ListNpcsRequest {
        region_id: Some(region_id),
        faction_id: None,
        limit: PART_LIMIT,
        cursor: String::new(),
    };
    let quest_page = quest_pb::ListQuestsRequest {
        region_id: Some(region_id),
        giver_npc_id: None,
        limit: PART_LIMIT,
        cursor: String::new(),
    };

    // Every part starts now; none waits for another. The public parts (the
    // region, its NPCs, the quests offered there) come from the edge
    // cache, kept and dropped as the routes' bodies are; their clients are
    // cloned only for a miss.
    let edge = &state.edge;
    let (region, time, npcs, dispositions, quests, active, heard, profile) = tokio::join!(
        within_kept(
            budget,
            edge.value(Resource::Region(region_id), || {
                let mut client = state.world.clone();
                async move {
                    let request = world_pb::GetRegionRequest { id: region_id };
                    Ok(client.get_region(request).await?.into_inner())
                }
            })
        ),
        within(budget, world.get_world_time(world_pb::GetWorldTimeRequest {})),
        within_kept(
            budget,
            edge.value(Resource::npc_page(&npc_page), || {
                let mut client = state.npc.clone();
                async move { Ok(client.list_npcs(npc_page).await?.into_inner()) }
            })
        ),
        within(
            budget,
            npc.batch_get_dispositions(npc_pb::BatchGetDispositionsRequest {
                player_id,
                npc_ids: Vec::new(),
                region_id: Some(region_id),
            })
        ),
        within_kept(
            budget,
            edge.value(Resource::quest_page(&quest_page), || {
                let mut client = state.quest.clone();
                async move { Ok(client.list_quests(quest_page).await?.into_inner()) }
            })
        ),
        within(
            budget,
            quest.list_player_quests(quest_pb::ListPlayerQuestsRequest {
                player_id,
                status: quest_pb::QuestStatus::Active as i32,
                limit: PART_LIMIT,
                cursor: String::new(),
            })
        ),
        async {
            let Some(mut rumor) = rumor else {
                return Err(tonic::Status::unavailable("VDM_RUMOR_URL is not set"));
            };
            within(
                budget,
                rumor.list_known_rumors(rumor_pb::ListKnownRumorsRequest {
                    npc_id: None,
                    player_id: Some(player_id),
                    region_id: Some(region_id),
                    limit: PART_LIMIT,
                    cursor: String::new(),
                }),
            )
            .await
        },
        async {
            match within(budget, player.get_profile(player_pb::GetProfileRequest { player_id })).await {
                // A player whose account is gone (its token outlived it) is
                // the profile part missing, not the whole bootstrap's
                // failure.
                Err(status) if status.code() == Code::NotFound => {
                    Err(tonic::Status::unavailable(status.message().to_owned()))
                }
                other => other,
            }
        },
    );

    let mut missing = Vec::new();
    let region = part(Part::Region, region, &mut missing)?;
    let time = part(Part::Time, time, &mut missing)?;
    let npcs = part(Part::Npcs, npcs, &mut missing)?;
    let dispositions = part(Part::Dispositions, dispositions, &mut missing)?;
    let quests = part(Part::Quests, quests, &mut missing)?;
    let active = part(Part::ActiveQuests, active, &mut missing)?;
    let heard = part(Part::Rumors, heard, &mut missing)?;
    let profile = part(Part::Profile, profile, &mut missing)?;
    if missing.len() == Part::ALL.len() {
        return Err(GatewayError::api(
            ErrorCode::Unavailable,
            "no part of the bootstrap could be loaded; retry shortly",
        ));
    }

    let scores: HashMap<i64, i32> = dispositions
        .map(|d| d.dispositions.into_iter().map(|d| (d.npc_id, d.score)).collect())
        .unwrap_or_default();
    let (npcs, npcs_next_cursor) = match npcs {
        Some(page) => (
            page.npcs
                .iter()
                .map(|npc| {
                    let position = npc.position.unwrap_or_default();
                    BootstrapNpcJson {
                        disposition: scores.get(&npc.id).copied().filter(|s| *s != 0),
                        id: npc.id,
                        name: npc.name.clone(),
                        q: position.q,
                        r: position.r,
                        faction_id: npc.faction_id,
                    }
                })
                .collect(),
            non_empty(page.next_cursor.clone()),
        ),
        None => (Vec::new(), None),
    };
    let (quests, quests_next_cursor) = match quests {
        Some(page) => (
            page.quests.iter().cloned().map(QuestJson::from).collect(),
            non_empty(page.next_cursor.clone()),
        ),
        None => (Vec::new(), None),
    };
    let (active_quests, active_quests_next_cursor) = match active {
        Some(page) => (
            page.quests.into_iter().map(PlayerQuestJson::from).collect(),
            non_empty(page.next_cursor),
        ),
        None => (Vec::new(), None),
    };
    let (rumors, rumors_next_cursor) = match heard {
        Some(page) => (
            page.known
                .into_iter()
                .filter_map(|k| k.variant)
                .map(|v| HeardJson {
                    rumor_id: v.rumor_id,
                    text: v.text,
                    from_npc_id: v.teller_npc_id,
                })
                .collect(),
            non_empty(page.next_cursor),
        ),
        None => (Vec::new(), None),
    };
    Ok(Reply::ok(
        format,
        BootstrapJson {
            profile: profile.map(ProfileJson::from),
            region: region.map(|region| RegionJson::from(Arc::unwrap_or_clone(region))),
            time: time.map(WorldTimeJson::from),
            npcs,
            npcs_next_cursor,
            quests,
            quests_next_cursor,
            active_quests,
            active_quests_next_cursor,
            rumors,
            rumors_next_cursor,
            missing,
        },
    ))
}

/// Awaits one service call for at most `budget`.
async fn within<T>(
    budget: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    budgeted(budget, async { call.await.map(tonic::Response::into_inner) }).await
}

/// Awaits one part kept by the edge cache for at most `budget`; its error
/// as the service's status, for [`part`] to sort.
async fn within_kept<M>(
    budget: Duration,
    kept: impl Future<Output = GatewayResult<Arc<M>>>,
) -> Result<Arc<M>, tonic::Status> {
    budgeted(budget, async {
        kept.await.map_err(|err| match err {
            GatewayError::Grpc(status) => status,
            other => tonic::Status::new(other.code().grpc_code(), other.to_string()),
        })
    })
    .await
}

/// Awaits `part` for at most `budget`: past it, the part is late.
async fn budgeted<T>(
    budget: Duration,
    part: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    tokio::time::timeout(budget, part).await.unwrap_or_else(|_| {
        Err(tonic::Status::deadline_exceeded(format!(
            "no answer within the bootstrap budget of {budget:?}"
        )))
    })
}

/// Sorts a part's outcome: its value, `None` (and its name in `missing`)
/// when the service failed or was too slow, or the whole request's error
/// when the service refused the request itself (a 4xx).
fn part<T>(
    which: Part,
    outcome: Result<T, tonic::Status>,
    missing: &mut Vec<&'static str>,
) -> GatewayResult<Option<T>> {
    match outcome {
        Ok(value) => Ok(Some(value)),
        Err(status) if is_request_error(status.code()) => Err(GatewayError::Grpc(status)),
        Err(status) => {
            tracing::warn!(
                part = which.as_str(),
                grpc.code = ?status.code(),
                grpc.message = status.message(),
                "bootstrap part missing"
            );
            metrics::counter!("vdm_bootstrap_missing_total", "part" => which.as_str()).increment(1);
            missing.push(which.as_str());
            Ok(None)
        }
    }
}

/// Codes that say the request is wrong, not the service: retrying the same
/// bootstrap would fail the same way, so the client should see them.
fn is_request_error(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
    )
}
