//! The rumor service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`). The NPC and world services it asks are
//! small fakes with canned answers (services never depend on each other's
//! crates); retellings go through the local transformer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tonic::{Code, Request, Response, Status};
use vdm_kit::bus::EventBody;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::testing::{Backend, Stub, TestService, closed_port_url, expect_status, peers};
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::npc::v1::npc_service_server::{NpcService, NpcServiceServer};
use vdm_proto::rumor::v1 as pb;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;
use vdm_proto::world::v1 as world_pb;
use vdm_proto::world::v1::world_service_server::{WorldService, WorldServiceServer};
use vdm_rumor::config::{TickConfig, TransformConfig};
use vdm_rumor::{Rumor, RumorConfig};

vdm_kit::backend_tests!(
    a_rumor_starts_with_its_origin_and_replays_its_key,
    creates_are_checked_with_the_peers,
    a_rumor_from_an_event_starts_with_its_witnesses,
    spreading_retells_once_per_listener,
    an_npc_tells_a_player_what_they_have_not_heard,
    a_tick_tells_the_nearest_neighbour,
    peers_that_are_down_make_creates_unavailable,
);

/// Region 1 holds Ada, Bram and Cora in a row (Ada talks whenever she
/// can); region 2 holds Dov.
const ADA: i64 = 1;
const BRAM: i64 = 2;
const CORA: i64 = 3;
const DOV: i64 = 4;
const VALE: i64 = 1;
/// The one world event the fake world has.
const FLOOD: i64 = 9;

fn fake_npcs() -> Vec<npc_pb::Npc> {
    let npc = |id: i64, name: &str, region_id: i64, q: i32, talkativeness: f32| npc_pb::Npc {
        id,
        name: name.to_owned(),
        region_id,
        position: Some(npc_pb::Hex { q, r: 0 }),
        faction_id: None,
        traits: Some(npc_pb::Traits {
            gullibility: 0.5,
            talkativeness,
            honesty: 0.3,
        }),
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    vec![
        npc(ADA, "Ada", VALE, 0, 1.0),
        npc(BRAM, "Bram", VALE, 1, 0.0),
        npc(CORA, "Cora", VALE, 2, 0.0),
        npc(DOV, "Dov", 2, 9, 0.0),
    ]
}

/// The NPC service as the rumor service sees it: four fixed NPCs.
#[derive(Clone, Default)]
struct FakeNpcs;

#[tonic::async_trait]
impl NpcService for FakeNpcs {
    async fn create_npc(
        &self,
        _: Request<npc_pb::CreateNpcRequest>,
    ) -> Result<Response<npc_pb::CreateNpcResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_npc(&self, request: Request<npc_pb::GetNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        let id = request.into_inner().id;
        fake_npcs()
            .into_iter()
            .find(|n| n.id == id)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("npc {id} not found")))
    }

    async fn batch_get_npcs(
        &self,
        request: Request<npc_pb::BatchGetNpcsRequest>,
    ) -> Result<Response<npc_pb::BatchGetNpcsResponse>, Status> {
        let ids = request.into_inner().ids;
        Ok(Response::new(npc_pb::BatchGetNpcsResponse {
            npcs: fake_npcs().into_iter().filter(|n| ids.contains(&n.id)).collect(),
        }))
    }

    async fn list_npcs(
        &self,
        request: Request<npc_pb::ListNpcsRequest>,
    ) -> Result<Response<npc_pb::ListNpcsResponse>, Status> {
        let r = request.into_inner();
        let limit = if r.limit == 0 { 20 } else { r.limit as usize };
        Ok(Response::new(npc_pb::ListNpcsResponse {
            npcs: fake_npcs()
                .into_iter()
                .filter(|n| r.region_id.is_none_or(|id| n.region_id == id))
                .take(limit)
                .collect(),
            next_cursor: String::new(),
        }))
    }

    async fn move_npc(&self, _: Request<npc_pb::MoveNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn update_npc(&self, _: Request<npc_pb::UpdateNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn adjust_disposition(
        &self,
        _: Request<npc_pb::AdjustDispositionRequest>,
    ) -> Result<Response<npc_pb::Disposition>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_disposition(
        &self,
        _: Request<npc_pb::GetDispositionRequest>,
    ) -> Result<Response<npc_pb::Disposition>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn batch_get_dispositions(
        &self,
        _: Request<npc_pb::BatchGetDispositionsRequest>,
    ) -> Result<Response<npc_pb::BatchGetDispositionsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn record_memory(
        &self,
        _: Request<npc_pb::RecordMemoryRequest>,
    ) -> Result<Response<npc_pb::RecordMemoryResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_memories(
        &self,
        _: Request<npc_pb::ListMemoriesRequest>,
    ) -> Result<Response<npc_pb::ListMemoriesResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

fn fake_regions() -> Vec<world_pb::Region> {
    let region = |id: i64, name: &str| world_pb::Region {
        id,
        name: name.to_owned(),
        biome: "farmland".to_owned(),
        cells: vec![world_pb::Hex { q: 0, r: id as i32 }],
        neighbor_ids: Vec::new(),
        updated_at_ms: 1,
    };
    vec![region(VALE, "Millbrook Vale"), region(2, "Ashwood")]
}

/// The world service as the rumor service sees it: two regions, one event.
#[derive(Clone, Default)]
struct FakeWorld;

#[tonic::async_trait]
impl WorldService for FakeWorld {
    async fn list_regions(
        &self,
        _: Request<world_pb::ListRegionsRequest>,
    ) -> Result<Response<world_pb::ListRegionsResponse>, Status> {
        Ok(Response::new(world_pb::ListRegionsResponse {
            regions: fake_regions(),
        }))
    }

    async fn get_region(
        &self,
        request: Request<world_pb::GetRegionRequest>,
    ) -> Result<Response<world_pb::Region>, Status> {
        let id = request.into_inner().id;
        fake_regions()
            .into_iter()
            .find(|r| r.id == id)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("region {id} not found")))
    }

    async fn get_region_at(
        &self,
        _: Request<world_pb::GetRegionAtRequest>,
    ) -> Result<Response<world_pb::Region>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn upsert_region(
        &self,
        _: Request<world_pb::UpsertRegionRequest>,
    ) -> Result<Response<world_pb::UpsertRegionResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_factions(
        &self,
        _: Request<world_pb::ListFactionsRequest>,
    ) -> Result<Response<world_pb::ListFactionsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn upsert_faction(
        &self,
        _: Request<world_pb::UpsertFactionRequest>,
    ) -> Result<Response<world_pb::UpsertFactionResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_faction_relations(
        &self,
        _: Request<world_pb::GetFactionRelationsRequest>,
    ) -> Result<Response<world_pb::GetFactionRelationsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn adjust_faction_relation(
        &self,
        _: Request<world_pb::AdjustFactionRelationRequest>,
    ) -> Result<Response<world_pb::FactionRelation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn set_faction_relation(
        &self,
        _: Request<world_pb::SetFactionRelationRequest>,
    ) -> Result<Response<world_pb::FactionRelation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_world_time(
        &self,
        _: Request<world_pb::GetWorldTimeRequest>,
    ) -> Result<Response<world_pb::WorldTime>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn publish_world_event(
        &self,
        _: Request<world_pb::PublishWorldEventRequest>,
    ) -> Result<Response<world_pb::PublishWorldEventResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_world_events(
        &self,
        _: Request<world_pb::ListWorldEventsRequest>,
    ) -> Result<Response<world_pb::ListWorldEventsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_world_event(
        &self,
        request: Request<world_pb::GetWorldEventRequest>,
    ) -> Result<Response<world_pb::WorldEvent>, Status> {
        let id = request.into_inner().id;
        if id != FLOOD {
            return Err(Status::not_found(format!("world event {id} not found")));
        }
        Ok(Response::new(world_pb::WorldEvent {
            id,
            kind: "flood".to_owned(),
            text: "The river floods the mill.".to_owned(),
            region_ids: vec![VALE],
            game_time_ms: 1,
            created_at_ms: 1,
        }))
    }
}

/// The rumor service, its client, and the fake peers (kept alive with them).
struct Setup {
    rumor: TestService<Rumor>,
    client: RumorServiceClient<GrpcChannel>,
    /// Serve until the test ends: bind them (`peers: _peers`), never `..`
    /// them away.
    peers: (Stub, Stub),
}

fn config(database: vdm_kit::config::DatabaseConfig, cache: vdm_kit::config::CacheConfig) -> RumorConfig {
    RumorConfig {
        database,
        cache,
        peer_timeout: Duration::from_secs(2),
        transform: TransformConfig::default(),
        // Ticks on demand only (SpreadTick).
        tick: TickConfig {
            interval: None,
            ..TickConfig::default()
        },
        artificial_delay: None,
    }
}

async fn start(backend: Backend) -> Option<Setup> {
    let npc = Stub::serve(NpcServiceServer::new(FakeNpcs)).await;
    let world = Stub::serve(WorldServiceServer::new(FakeWorld)).await;
    let rumor = TestService::<Rumor>::start(
        backend,
        config,
        peers([("npc", npc.url().as_str()), ("world", world.url().as_str())]),
    )
    .await?;
    let client = RumorServiceClient::new(rumor.channel());
    Some(Setup {
        rumor,
        client,
        peers: (npc, world),
    })
}

fn from_npc(text: &str, npc_id: i64, truth: f32, key: &str) -> pb::CreateRumorRequest {
    pb::CreateRumorRequest {
        text: text.to_owned(),
        origin_npc_id: Some(npc_id),
        origin_event_id: None,
        region_id: VALE,
        truth,
        idempotency_key: key.to_owned(),
    }
}

async fn create(client: &mut RumorServiceClient<GrpcChannel>, request: pb::CreateRumorRequest) -> pb::Rumor {
    client.create_rumor(request).await.unwrap().into_inner().rumor.unwrap()
}

async fn known_by_npc(client: &mut RumorServiceClient<GrpcChannel>, npc_id: i64) -> Vec<pb::Known> {
    client
        .list_known_rumors(pb::ListKnownRumorsRequest {
            npc_id: Some(npc_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .known
}

async fn spread(
    client: &mut RumorServiceClient<GrpcChannel>,
    rumor_id: i64,
    from: i64,
    to: i64,
) -> Result<pb::SpreadRumorResponse, Status> {
    client
        .spread_rumor(pb::SpreadRumorRequest {
            rumor_id,
            from_npc_id: from,
            to_npc_id: to,
            seed: 7,
        })
        .await
        .map(Response::into_inner)
}

async fn a_rumor_starts_with_its_origin_and_replays_its_key(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    assert_eq!(rumor.ready().await, Ok(()));

    let first = client
        .create_rumor(from_npc(" The bridge at Ashford fell ", ADA, 0.8, "r-bridge"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    let bridge = first.rumor.unwrap();
    assert_eq!(bridge.text, "The bridge at Ashford fell");
    assert_eq!((bridge.origin_npc_id, bridge.origin_event_id), (Some(ADA), None));
    assert_eq!(bridge.region_id, VALE);
    assert_eq!(bridge.truth, 0.8);
    assert_eq!(bridge.variant_count, 1);
    assert!(bridge.root_variant_id > 0);

    let again = client
        .create_rumor(from_npc(" The bridge at Ashford fell ", ADA, 0.8, "r-bridge"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.rumor.unwrap(), bridge);
    let other = client
        .create_rumor(from_npc("The bridge at Ashford fell", ADA, 0.3, "r-bridge"))
        .await;
    expect_status(
        other,
        Code::AlreadyExists,
        "idempotency key \"r-bridge\" was already used for a different request",
    );

    let got = client
        .get_rumor(pb::GetRumorRequest { id: bridge.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, bridge);

    let known = known_by_npc(&mut client, ADA).await;
    assert_eq!(known.len(), 1, "the origin NPC knows it, once");
    let root = known[0].variant.as_ref().unwrap();
    assert_eq!(root.id, bridge.root_variant_id);
    assert_eq!(
        (root.parent_id, root.teller_npc_id, root.listener_npc_id),
        (None, None, None)
    );
    assert_eq!(root.text, "The bridge at Ashford fell");
    assert_eq!(root.transformer, "origin");
    assert_eq!((root.distortion, root.truth), (0.0, 0.8));
    assert_eq!(known[0].region_id, VALE);
    assert!(known_by_npc(&mut client, BRAM).await.is_empty());
    rumor.finish().await;
}

async fn creates_are_checked_with_the_peers(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    let unknown_npc = client.create_rumor(from_npc("Wolves!", 99, 0.5, "")).await;
    expect_status(unknown_npc, Code::InvalidArgument, "origin_npc_id names unknown npc 99");
    let unknown_region = client
        .create_rumor(pb::CreateRumorRequest {
            region_id: 42,
            ..from_npc("Wolves!", ADA, 0.5, "")
        })
        .await;
    expect_status(
        unknown_region,
        Code::InvalidArgument,
        "region_id names unknown region 42",
    );
    let unknown_event = client
        .create_rumor(pb::CreateRumorRequest {
            origin_npc_id: None,
            origin_event_id: Some(77),
            ..from_npc("Wolves!", ADA, 0.5, "")
        })
        .await;
    expect_status(
        unknown_event,
        Code::InvalidArgument,
        "origin_event_id names unknown world event 77",
    );
    let both = client
        .create_rumor(pb::CreateRumorRequest {
            origin_event_id: Some(FLOOD),
            ..from_npc("Wolves!", ADA, 0.5, "")
        })
        .await;
    expect_status(
        both,
        Code::InvalidArgument,
        "give only one of origin_npc_id and origin_event_id",
    );
    let truth = client.create_rumor(from_npc("Wolves!", ADA, 1.5, "")).await;
    expect_status(truth, Code::InvalidArgument, "truth must be between 0 and 1, got 1.5");
    let empty = client.create_rumor(from_npc("  ", ADA, 0.5, "")).await;
    expect_status(empty, Code::InvalidArgument, "text must not be empty");

    let missing = client.get_rumor(pb::GetRumorRequest { id: 4242 }).await;
    expect_status(missing, Code::NotFound, "rumor 4242 not found");
    let holder = client
        .list_known_rumors(pb::ListKnownRumorsRequest {
            npc_id: Some(ADA),
            player_id: Some(5),
            ..Default::default()
        })
        .await;
    expect_status(
        holder,
        Code::InvalidArgument,
        "give exactly one of npc_id and player_id",
    );
    assert!(
        known_by_npc(&mut client, ADA).await.is_empty(),
        "nothing refused was stored"
    );
    rumor.finish().await;
}

async fn a_rumor_from_an_event_starts_with_its_witnesses(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    let flood = create(
        &mut client,
        pb::CreateRumorRequest {
            origin_npc_id: None,
            origin_event_id: Some(FLOOD),
            ..from_npc("The river took the mill wheel", ADA, 0.9, "")
        },
    )
    .await;
    assert_eq!((flood.origin_npc_id, flood.origin_event_id), (None, Some(FLOOD)));
    for npc in [ADA, BRAM, CORA] {
        let known = known_by_npc(&mut client, npc).await;
        let rumors: Vec<i64> = known.iter().map(|k| k.variant.as_ref().unwrap().rumor_id).collect();
        assert_eq!(rumors, vec![flood.id], "npc {npc} of the region saw it");
    }
    assert!(
        known_by_npc(&mut client, DOV).await.is_empty(),
        "another region's NPC did not"
    );
    rumor.finish().await;
}

async fn spreading_retells_once_per_listener(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    let bridge = create(&mut client, from_npc("The bridge at Ashford fell", ADA, 0.8, "")).await;

    let told = spread(&mut client, bridge.id, ADA, BRAM).await.unwrap();
    assert!(!told.already_known);
    let heard = told.variant.unwrap();
    assert_eq!(heard.rumor_id, bridge.id);
    assert_eq!(heard.parent_id, Some(bridge.root_variant_id));
    assert_eq!(
        (heard.teller_npc_id, heard.listener_npc_id, heard.listener_player_id),
        (Some(ADA), Some(BRAM), None)
    );
    assert_eq!(heard.transformer, "local/1");
    assert!(!heard.text.is_empty());
    assert!(heard.distortion > 0.0 && heard.distortion <= 1.0, "{heard:?}");
    assert!(
        (heard.truth - 0.8 * (1.0 - heard.distortion)).abs() < 1e-5,
        "truth decays with distortion"
    );

    let again = spread(&mut client, bridge.id, ADA, BRAM).await.unwrap();
    assert!(again.already_known);
    assert_eq!(again.variant.unwrap().id, heard.id, "nothing was retold");

    let onward = spread(&mut client, bridge.id, BRAM, CORA)
        .await
        .unwrap()
        .variant
        .unwrap();
    assert_eq!(onward.parent_id, Some(heard.id));
    assert!(
        onward.distortion > heard.distortion,
        "distortion grows with every retelling"
    );
    let counted = client
        .get_rumor(pb::GetRumorRequest { id: bridge.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counted.variant_count, 3);

    let ignorant = spread(&mut client, bridge.id, DOV, ADA).await;
    expect_status(
        ignorant,
        Code::FailedPrecondition,
        &format!("npc {DOV} does not know rumor {}", bridge.id),
    );
    let itself = spread(&mut client, bridge.id, ADA, ADA).await;
    expect_status(itself, Code::InvalidArgument, "from_npc_id and to_npc_id must differ");
    let stranger = spread(&mut client, bridge.id, ADA, 99).await;
    expect_status(stranger, Code::NotFound, "npc 99 not found");
    let unknown = spread(&mut client, 4242, ADA, BRAM).await;
    expect_status(unknown, Code::NotFound, "rumor 4242 not found");
    rumor.finish().await;
}

async fn an_npc_tells_a_player_what_they_have_not_heard(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    let bridge = create(&mut client, from_npc("The bridge at Ashford fell", ADA, 0.8, "")).await;
    let mut events = rumor.watch_events().await;
    let talk = pb::TellPlayerRequest {
        npc_id: ADA,
        player_id: 500,
        standings: Vec::new(),
    };

    let first = client.tell_player(talk.clone()).await.unwrap().into_inner();
    assert!(first.told && first.first_time);
    let heard = first.variant.unwrap();
    assert_eq!(heard.rumor_id, bridge.id);
    assert_eq!(
        (heard.teller_npc_id, heard.listener_player_id, heard.listener_npc_id),
        (Some(ADA), Some(500), None)
    );
    let pushed = events.next("rumor.heard").await;
    assert_eq!(pushed.player_id, Some(500));
    let Some(EventBody::RumorHeard(pushed)) = &pushed.body else {
        panic!("not a rumor heard: {pushed:?}")
    };
    assert_eq!(pushed.variant_id, heard.id);
    assert_eq!(pushed.text, heard.text);

    let repeat = client.tell_player(talk.clone()).await.unwrap().into_inner();
    assert!(repeat.told && !repeat.first_time);
    assert_eq!(repeat.variant.unwrap().id, heard.id, "the same telling again");
    events.assert_none("rumor.heard", Duration::from_millis(300)).await;

    let wolves = create(&mut client, from_npc("Wolves in the orchard", ADA, 0.6, "")).await;
    let fresh = client.tell_player(talk.clone()).await.unwrap().into_inner();
    assert!(fresh.first_time);
    assert_eq!(fresh.variant.unwrap().rumor_id, wolves.id, "the one not heard yet");

    let silent = client
        .tell_player(pb::TellPlayerRequest {
            npc_id: CORA,
            player_id: 500,
            standings: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        silent,
        pb::TellPlayerResponse {
            attitude: pb::Attitude::Neutral as i32,
            ..Default::default()
        },
        "an NPC that knows nothing tells nothing"
    );
    // Ada has no faction: no standing makes her hostile.
    let factionless = client
        .tell_player(pb::TellPlayerRequest {
            standings: vec![pb::FactionStanding {
                faction_id: 1,
                standing: -100,
            }],
            ..talk.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(factionless.told && factionless.refusal.is_empty());
    assert_eq!(factionless.attitude(), pb::Attitude::Neutral);

    let journal = client
        .list_known_rumors(pb::ListKnownRumorsRequest {
            player_id: Some(500),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rumors: Vec<i64> = journal
        .known
        .iter()
        .map(|k| k.variant.as_ref().unwrap().rumor_id)
        .collect();
    assert_eq!(rumors, vec![wolves.id, bridge.id], "newest rumor first");
    let unknown = client
        .tell_player(pb::TellPlayerRequest {
            npc_id: 99,
            player_id: 500,
            standings: Vec::new(),
        })
        .await;
    expect_status(unknown, Code::NotFound, "npc 99 not found");
    rumor.finish().await;
}

async fn a_tick_tells_the_nearest_neighbour(backend: Backend) {
    let Some(Setup {
        rumor,
        mut client,
        peers: _peers,
    }) = start(backend).await
    else {
        return;
    };
    let bridge = create(&mut client, from_npc("The bridge at Ashford fell", ADA, 0.8, "")).await;
    let mut events = rumor.watch_events().await;

    let report = client
        .spread_tick(pb::SpreadTickRequest {
            region_id: VALE,
            max_tellings: 0,
            seed: 42,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.npcs, report.knowers, report.tellings), (3, 1, 1));
    let bram: Vec<Option<i64>> = known_by_npc(&mut client, BRAM)
        .await
        .iter()
        .map(|k| k.variant.as_ref().unwrap().teller_npc_id)
        .collect();
    assert_eq!(bram, vec![Some(ADA)], "Ada told her nearest neighbour");
    assert!(
        known_by_npc(&mut client, CORA).await.is_empty(),
        "one telling per talker and tick"
    );
    let pushed = events.next("rumor.spread").await;
    assert_eq!(pushed.region_ids, vec![VALE]);
    let Some(EventBody::RumorSpread(spread)) = &pushed.body else {
        panic!("not a spread: {pushed:?}")
    };
    assert_eq!(spread.tellings, 1);
    let counted = client
        .get_rumor(pb::GetRumorRequest { id: bridge.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counted.variant_count, 2);

    let unknown = client
        .spread_tick(pb::SpreadTickRequest {
            region_id: 42,
            ..Default::default()
        })
        .await;
    expect_status(unknown, Code::InvalidArgument, "region_id names unknown region 42");
    let too_many = client
        .spread_tick(pb::SpreadTickRequest {
            region_id: VALE,
            max_tellings: 5_001,
            seed: 0,
        })
        .await;
    expect_status(
        too_many,
        Code::InvalidArgument,
        "max_tellings must be at most 5000, got 5001",
    );
    rumor.finish().await;
}

async fn peers_that_are_down_make_creates_unavailable(backend: Backend) {
    let down = closed_port_url();
    let Some(rumor) = TestService::<Rumor>::start(
        backend,
        config,
        peers([("npc", down.as_str()), ("world", down.as_str())]),
    )
    .await
    else {
        return;
    };
    let mut client = RumorServiceClient::new(rumor.channel());
    assert_eq!(rumor.ready().await, Ok(()), "readiness is the database only");
    let create = client.create_rumor(from_npc("Wolves!", ADA, 0.5, "")).await;
    expect_status(create, Code::Unavailable, "the world service is unavailable");
    let talk = client
        .tell_player(pb::TellPlayerRequest {
            npc_id: ADA,
            player_id: 5,
            standings: Vec::new(),
        })
        .await;
    expect_status(talk, Code::Unavailable, "the npc service is unavailable");
    // What needs only the database still answers.
    let missing = client.get_rumor(pb::GetRumorRequest { id: 1 }).await;
    expect_status(missing, Code::NotFound, "rumor 1 not found");
    rumor.finish().await;
}
