//! The NPC service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`). The world service it asks is a small fake
//! with a fixed map (services never depend on each other's crates).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::{Code, Request, Response, Status};
use vdm_kit::bus::EventBody;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::testing::{Backend, Stub, TestService, closed_port_url, expect_status, peers};
use vdm_npc::{Npc, NpcConfig};
use vdm_proto::npc::v1 as pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::world::v1 as world_pb;
use vdm_proto::world::v1::world_service_server::{WorldService, WorldServiceServer};

vdm_kit::backend_tests!(
    npcs_are_placed_on_the_map_and_listed_by_page,
    a_key_replays_its_npc_and_refuses_another_body,
    the_world_refuses_what_it_does_not_have,
    moving_asks_the_world_and_is_pushed,
    an_update_changes_what_it_gives,
    dispositions_are_clamped_per_player,
    a_keyed_adjustment_applies_once,
    memories_keep_the_most_important_within_the_cap,
    a_world_that_is_down_makes_writes_unavailable,
);

/// Memories each NPC keeps in these tests.
const MEMORY_CAP: u32 = 3;
/// The fake world's game time.
const GAME_TIME_MS: i64 = 123_456_789;

/// The world service as the NPC service sees it: two regions, one faction,
/// a stopped clock. Counts the calls it answers.
#[derive(Clone, Default)]
struct FakeWorld {
    calls: Arc<AtomicUsize>,
}

fn fake_regions() -> Vec<world_pb::Region> {
    let region = |id: i64, name: &str, cells: &[(i32, i32)]| world_pb::Region {
        id,
        name: name.to_owned(),
        biome: "farmland".to_owned(),
        cells: cells.iter().map(|&(q, r)| world_pb::Hex { q, r }).collect(),
        neighbor_ids: Vec::new(),
        updated_at_ms: 1,
    };
    vec![
        region(1, "Millbrook Vale", &[(0, 0), (1, 0)]),
        region(2, "Ashwood", &[(5, 5)]),
    ]
}

impl FakeWorld {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl WorldService for FakeWorld {
    async fn list_regions(
        &self,
        _: Request<world_pb::ListRegionsRequest>,
    ) -> Result<Response<world_pb::ListRegionsResponse>, Status> {
        self.called();
        Ok(Response::new(world_pb::ListRegionsResponse {
            regions: fake_regions(),
        }))
    }

    async fn get_region(
        &self,
        request: Request<world_pb::GetRegionRequest>,
    ) -> Result<Response<world_pb::Region>, Status> {
        self.called();
        let id = request.into_inner().id;
        fake_regions()
            .into_iter()
            .find(|r| r.id == id)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("region {id} not found")))
    }

    async fn get_region_at(
        &self,
        request: Request<world_pb::GetRegionAtRequest>,
    ) -> Result<Response<world_pb::Region>, Status> {
        self.called();
        let hex = request.into_inner().hex.unwrap_or_default();
        fake_regions()
            .into_iter()
            .find(|r| r.cells.contains(&hex))
            .map(Response::new)
            .ok_or_else(|| Status::not_found("outside the map"))
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
        self.called();
        Ok(Response::new(world_pb::ListFactionsResponse {
            factions: vec![world_pb::Faction {
                id: 7,
                name: "Wardens".to_owned(),
            }],
        }))
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
        self.called();
        Ok(Response::new(world_pb::WorldTime {
            game_time_ms: GAME_TIME_MS,
            rate: 60.0,
            real_time_ms: vdm_kit::now_ms(),
            day: 2,
            hour: 10,
            minute: 17,
        }))
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
        _: Request<world_pb::GetWorldEventRequest>,
    ) -> Result<Response<world_pb::WorldEvent>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// The NPC service, its client, the fake world (kept alive with them) and
/// the fake's call counter.
struct Setup {
    npc: TestService<Npc>,
    client: NpcServiceClient<GrpcChannel>,
    world_calls: Arc<AtomicUsize>,
    /// Serves until the test ends: bind it (`world: _world`), never `..` it away.
    world: Stub,
}

fn config(database: vdm_kit::config::DatabaseConfig, cache: vdm_kit::config::CacheConfig) -> NpcConfig {
    NpcConfig {
        database,
        cache,
        world_timeout: Duration::from_secs(2),
        memory_cap: MEMORY_CAP,
        artificial_delay: None,
    }
}

async fn start(backend: Backend) -> Option<Setup> {
    let fake = FakeWorld::default();
    let world_calls = fake.calls.clone();
    let world = Stub::serve(WorldServiceServer::new(fake)).await;
    let npc = TestService::<Npc>::start(backend, config, peers([("world", world.url().as_str())])).await?;
    let client = NpcServiceClient::new(npc.channel());
    Some(Setup {
        npc,
        client,
        world_calls,
        world,
    })
}

fn spec(name: &str, region_id: i64) -> pb::NpcSpec {
    pb::NpcSpec {
        name: name.to_owned(),
        region_id,
        ..Default::default()
    }
}

async fn create(client: &mut NpcServiceClient<GrpcChannel>, spec: pb::NpcSpec) -> pb::Npc {
    client
        .create_npc(pb::CreateNpcRequest {
            npc: Some(spec),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .npc
        .unwrap()
}

fn traits(gullibility: f32, talkativeness: f32, honesty: f32) -> pb::Traits {
    pb::Traits {
        gullibility,
        talkativeness,
        honesty,
    }
}

async fn npcs_are_placed_on_the_map_and_listed_by_page(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    assert_eq!(npc.ready().await, Ok(()));

    let miller = create(&mut client, spec("Old Tom", 1)).await;
    assert!(miller.id > 0);
    assert_eq!(miller.region_id, 1);
    assert_eq!(miller.position, Some(pb::Hex { q: 0, r: 0 }), "the region's first cell");
    assert_eq!(miller.traits, Some(traits(0.5, 0.5, 0.5)));
    assert_eq!(miller.faction_id, None);

    let warden = create(
        &mut client,
        pb::NpcSpec {
            position: Some(pb::Hex { q: 1, r: 0 }),
            faction_id: Some(7),
            traits: Some(traits(0.1, 0.9, 0.8)),
            ..spec("Captain Ela", 1)
        },
    )
    .await;
    assert_eq!(warden.position, Some(pb::Hex { q: 1, r: 0 }));
    assert_eq!(warden.faction_id, Some(7));
    assert_eq!(warden.traits, Some(traits(0.1, 0.9, 0.8)));
    let hermit = create(&mut client, spec("Hermit", 2)).await;
    let smith = create(&mut client, spec("Smith", 1)).await;

    let got = client
        .get_npc(pb::GetNpcRequest { id: warden.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, warden);

    let page = client
        .list_npcs(pb::ListNpcsRequest {
            region_id: Some(1),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = page.npcs.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![miller.id, warden.id]);
    let rest = client
        .list_npcs(pb::ListNpcsRequest {
            region_id: Some(1),
            limit: 2,
            cursor: page.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = rest.npcs.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![smith.id]);
    assert_eq!(rest.next_cursor, "");
    let wardens = client
        .list_npcs(pb::ListNpcsRequest {
            faction_id: Some(7),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = wardens.npcs.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![warden.id]);

    let batch = client
        .batch_get_npcs(pb::BatchGetNpcsRequest {
            ids: vec![hermit.id, 999_999, miller.id, hermit.id],
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<i64> = batch.npcs.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![miller.id, hermit.id]);
    let unknown = client.get_npc(pb::GetNpcRequest { id: 999_999 }).await;
    expect_status(unknown, Code::NotFound, "npc 999999 not found");
    npc.finish().await;
}

async fn a_key_replays_its_npc_and_refuses_another_body(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    let request = |name: &str| pb::CreateNpcRequest {
        npc: Some(spec(name, 1)),
        idempotency_key: "npc-tom".to_owned(),
    };
    let first = client.create_npc(request("Old Tom")).await.unwrap().into_inner();
    let again = client.create_npc(request("Old Tom")).await.unwrap().into_inner();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.npc, first.npc);
    let other = client.create_npc(request("Young Tom")).await;
    expect_status(
        other,
        Code::AlreadyExists,
        "idempotency key \"npc-tom\" was already used for a different request",
    );
    let all = client
        .list_npcs(pb::ListNpcsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.npcs.len(), 1);
    npc.finish().await;
}

async fn the_world_refuses_what_it_does_not_have(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    let refused = |spec: pb::NpcSpec| pb::CreateNpcRequest {
        npc: Some(spec),
        idempotency_key: String::new(),
    };
    let region = client.create_npc(refused(spec("Ghost", 42))).await;
    expect_status(region, Code::InvalidArgument, "region_id names unknown region 42");
    let cell = client
        .create_npc(refused(pb::NpcSpec {
            position: Some(pb::Hex { q: 5, r: 5 }),
            ..spec("Lost", 1)
        }))
        .await;
    expect_status(cell, Code::InvalidArgument, "position (5, 5) is not a cell of region 1");
    let faction = client
        .create_npc(refused(pb::NpcSpec {
            faction_id: Some(8),
            ..spec("Rebel", 1)
        }))
        .await;
    expect_status(faction, Code::InvalidArgument, "faction_id names unknown faction 8");
    let honesty = client
        .create_npc(refused(pb::NpcSpec {
            traits: Some(traits(0.5, 0.5, 1.5)),
            ..spec("Liar", 1)
        }))
        .await;
    expect_status(
        honesty,
        Code::InvalidArgument,
        "traits.honesty must be between 0 and 1, got 1.5",
    );
    let name = client.create_npc(refused(spec("  ", 1))).await;
    expect_status(name, Code::InvalidArgument, "name must not be empty");
    let missing = client.create_npc(pb::CreateNpcRequest::default()).await;
    expect_status(missing, Code::InvalidArgument, "npc is required");
    let all = client
        .list_npcs(pb::ListNpcsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(all.npcs.is_empty(), "nothing refused was stored");
    npc.finish().await;
}

async fn moving_asks_the_world_and_is_pushed(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world_calls,
        world: _world,
    }) = start(backend).await
    else {
        return;
    };
    let tom = create(&mut client, spec("Old Tom", 1)).await;
    let mut events = npc.watch_events().await;

    let moved = client
        .move_npc(pb::MoveNpcRequest {
            id: tom.id,
            to: Some(pb::Hex { q: 5, r: 5 }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.region_id, 2, "the region the world says holds the hex");
    assert_eq!(moved.position, Some(pb::Hex { q: 5, r: 5 }));
    let got = client
        .get_npc(pb::GetNpcRequest { id: tom.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.region_id, 2, "the cached NPC was dropped");
    let pushed = events.next("npc.moved").await;
    assert_eq!(
        pushed.region_ids,
        vec![1, 2],
        "the region it left and the one it entered"
    );
    let Some(EventBody::NpcMoved(moved)) = &pushed.body else {
        panic!("not a move: {pushed:?}")
    };
    assert_eq!(moved.npc_id, tom.id);
    assert_eq!(moved.from_region_id, 1);

    let off = client
        .move_npc(pb::MoveNpcRequest {
            id: tom.id,
            to: Some(pb::Hex { q: 50, r: 50 }),
        })
        .await;
    expect_status(off, Code::InvalidArgument, "hex (50, 50) is outside the map");
    let calls = world_calls.load(Ordering::SeqCst);
    let unknown = client
        .move_npc(pb::MoveNpcRequest {
            id: 999_999,
            to: Some(pb::Hex { q: 0, r: 0 }),
        })
        .await;
    expect_status(unknown, Code::NotFound, "npc 999999 not found");
    assert_eq!(
        world_calls.load(Ordering::SeqCst),
        calls,
        "unknown NPCs fail before the world is asked"
    );
    let nowhere = client.move_npc(pb::MoveNpcRequest { id: tom.id, to: None }).await;
    expect_status(nowhere, Code::InvalidArgument, "to is required");
    events.assert_none("npc.moved", Duration::from_millis(300)).await;
    npc.finish().await;
}

async fn an_update_changes_what_it_gives(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world_calls: _,
        world: _world,
    }) = start(backend).await
    else {
        return;
    };
    let tom = create(&mut client, spec("Old Tom", 1)).await;
    // Read once, so the update must drop the cached NPC.
    client.get_npc(pb::GetNpcRequest { id: tom.id }).await.unwrap();
    let traits = pb::Traits {
        gullibility: 0.25,
        talkativeness: 0.75,
        honesty: 1.0,
    };
    let updated = client
        .update_npc(pb::UpdateNpcRequest {
            id: tom.id,
            name: None,
            faction: Some(pb::FactionChange { id: Some(7) }),
            traits: Some(traits),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Old Tom");
    assert_eq!(updated.faction_id, Some(7));
    assert_eq!(updated.traits, Some(traits));
    assert_eq!(updated.position, tom.position, "an update does not move it");
    let got = client
        .get_npc(pb::GetNpcRequest { id: tom.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.faction_id, got.traits),
        (Some(7), Some(traits)),
        "the cached NPC was dropped"
    );

    // A rename, and the faction taken away; the traits stay.
    let renamed = client
        .update_npc(pb::UpdateNpcRequest {
            id: tom.id,
            name: Some("Tom the Elder".into()),
            faction: Some(pb::FactionChange { id: None }),
            traits: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.faction_id, renamed.traits),
        ("Tom the Elder", None, Some(traits))
    );

    let unknown_faction = client
        .update_npc(pb::UpdateNpcRequest {
            id: tom.id,
            name: None,
            faction: Some(pb::FactionChange { id: Some(8) }),
            traits: None,
        })
        .await;
    expect_status(unknown_faction, Code::InvalidArgument, "unknown faction 8");
    let bad = client
        .update_npc(pb::UpdateNpcRequest {
            id: tom.id,
            name: Some(" ".into()),
            faction: None,
            traits: None,
        })
        .await;
    expect_status(bad, Code::InvalidArgument, "name must not be empty");
    let missing = client
        .update_npc(pb::UpdateNpcRequest {
            id: 999_999,
            name: Some("Nobody".into()),
            faction: None,
            traits: None,
        })
        .await;
    expect_status(missing, Code::NotFound, "npc 999999 not found");
    npc.finish().await;
}

async fn dispositions_are_clamped_per_player(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    let tom = create(&mut client, spec("Old Tom", 1)).await;
    let ela = create(&mut client, spec("Ela", 1)).await;
    let hermit = create(&mut client, spec("Hermit", 2)).await;

    let never = client
        .get_disposition(pb::GetDispositionRequest {
            npc_id: tom.id,
            player_id: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((never.score, never.updated_at_ms), (0, 0));

    let adjust = |npc_id: i64, player_id: i64, delta: i32| pb::AdjustDispositionRequest {
        npc_id,
        player_id,
        delta,
        idempotency_key: String::new(),
    };
    assert_eq!(
        client
            .adjust_disposition(adjust(tom.id, 5, 30))
            .await
            .unwrap()
            .into_inner()
            .score,
        30
    );
    let devoted = client
        .adjust_disposition(adjust(tom.id, 5, 90))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(devoted.score, 100, "clamped at devoted");
    assert!(devoted.updated_at_ms > 0);
    assert_eq!(
        client
            .adjust_disposition(adjust(tom.id, 6, -20))
            .await
            .unwrap()
            .into_inner()
            .score,
        -20
    );
    client.adjust_disposition(adjust(hermit.id, 5, -5)).await.unwrap();
    let too_much = client.adjust_disposition(adjust(tom.id, 5, 300)).await;
    expect_status(
        too_much,
        Code::InvalidArgument,
        "delta must be between -200 and 200, got 300",
    );

    let got = client
        .get_disposition(pb::GetDispositionRequest {
            npc_id: tom.id,
            player_id: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.score, 100);

    let by_ids = client
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: 5,
            npc_ids: vec![tom.id, ela.id],
            region_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut scores: Vec<(i64, i32)> = by_ids.dispositions.iter().map(|d| (d.npc_id, d.score)).collect();
    scores.sort_unstable();
    assert_eq!(scores, vec![(tom.id, 100), (ela.id, 0)]);
    let in_vale = client
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: 5,
            npc_ids: Vec::new(),
            region_id: Some(1),
        })
        .await
        .unwrap()
        .into_inner();
    let scores: Vec<(i64, i32)> = in_vale.dispositions.iter().map(|d| (d.npc_id, d.score)).collect();
    assert_eq!(
        scores,
        vec![(tom.id, 100)],
        "only those ever adjusted, only in the region"
    );
    let both = client
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: 5,
            npc_ids: vec![tom.id],
            region_id: Some(1),
        })
        .await;
    expect_status(both, Code::InvalidArgument, "give exactly one of npc_ids and region_id");
    let unknown = client
        .get_disposition(pb::GetDispositionRequest {
            npc_id: 999_999,
            player_id: 5,
        })
        .await;
    expect_status(unknown, Code::NotFound, "npc 999999 not found");
    npc.finish().await;
}

async fn a_keyed_adjustment_applies_once(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    let tom = create(&mut client, spec("Old Tom", 1)).await;
    let ela = create(&mut client, spec("Ela", 1)).await;
    let keyed = |npc_id: i64, player_id: i64, delta: i32, key: &str| pb::AdjustDispositionRequest {
        npc_id,
        player_id,
        delta,
        idempotency_key: key.to_owned(),
    };
    let first = client
        .adjust_disposition(keyed(tom.id, 5, 10, "quest-1-player-5-disposition"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.score, 10);
    // An unkeyed change in between: a replay answers the disposition as it
    // is now, without adding its delta again.
    client.adjust_disposition(keyed(tom.id, 5, -3, "")).await.unwrap();
    let replay = client
        .adjust_disposition(keyed(tom.id, 5, 10, "quest-1-player-5-disposition"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.score, 7, "the key's delta is not applied twice");

    // Racing replays of one fresh key (as two relays sending one row):
    // applied once.
    let racers = (0..6).map(|_| {
        let mut client = client.clone();
        let request = keyed(tom.id, 5, 20, "quest-2-player-5-disposition");
        async move { client.adjust_disposition(request).await.map(|r| r.into_inner().score) }
    });
    let scores = futures_util::future::join_all(racers).await;
    assert!(scores.iter().all(|s| s.as_ref().is_ok_and(|s| *s == 27)), "{scores:?}");

    // The same key for another delta, player or NPC is refused, and
    // changes nothing.
    for other in [
        keyed(tom.id, 5, 11, "quest-1-player-5-disposition"),
        keyed(tom.id, 6, 10, "quest-1-player-5-disposition"),
        keyed(ela.id, 5, 10, "quest-1-player-5-disposition"),
    ] {
        let refused = client.adjust_disposition(other).await;
        expect_status(
            refused,
            Code::AlreadyExists,
            "idempotency key \"quest-1-player-5-disposition\" was already used for a different request",
        );
    }
    let bad_key = client.adjust_disposition(keyed(tom.id, 5, 1, "bad key\n")).await;
    expect_status(bad_key, Code::InvalidArgument, "idempotency key must be");
    let missing = client
        .adjust_disposition(keyed(999_999, 5, 1, "quest-3-player-5-disposition"))
        .await;
    expect_status(missing, Code::NotFound, "npc 999999 not found");
    let scores = client
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: 5,
            npc_ids: vec![tom.id, ela.id],
            region_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let scores: Vec<(i64, i32)> = scores.dispositions.iter().map(|d| (d.npc_id, d.score)).collect();
    assert_eq!(scores, vec![(tom.id, 27), (ela.id, 0)]);
    let player_6 = client
        .get_disposition(pb::GetDispositionRequest {
            npc_id: tom.id,
            player_id: 6,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(player_6.score, 0);
    npc.finish().await;
}

async fn memories_keep_the_most_important_within_the_cap(backend: Backend) {
    let Some(Setup {
        npc,
        mut client,
        world: _world,
        ..
    }) = start(backend).await
    else {
        return;
    };
    let tom = create(&mut client, spec("Old Tom", 1)).await;
    let memory = |text: &str, importance: f32, key: &str| pb::RecordMemoryRequest {
        npc_id: tom.id,
        kind: "saw".to_owned(),
        text: text.to_owned(),
        subject_ids: vec![5, 5, 9],
        importance,
        game_time_ms: None,
        idempotency_key: key.to_owned(),
    };
    let wolves = client
        .record_memory(memory("Wolves by the mill", 0.9, "m-wolves"))
        .await
        .unwrap()
        .into_inner();
    assert!(!wolves.replayed);
    assert!(wolves.dropped_memory_ids.is_empty());
    let wolves = wolves.memory.unwrap();
    assert_eq!(
        wolves.game_time_ms, GAME_TIME_MS,
        "the world clock's time when none is given"
    );
    assert_eq!(wolves.subject_ids, vec![5, 9]);
    let replay = client
        .record_memory(memory("Wolves by the mill", 0.9, "m-wolves"))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.memory.unwrap().id, wolves.id);

    let mut ids = vec![wolves.id];
    for (text, importance) in [("A cart passed", 0.2), ("Rain all day", 0.5)] {
        let recorded = client
            .record_memory(memory(text, importance, ""))
            .await
            .unwrap()
            .into_inner();
        assert!(recorded.dropped_memory_ids.is_empty(), "within the cap");
        ids.push(recorded.memory.unwrap().id);
    }
    let at_an_hour = client
        .record_memory(pb::RecordMemoryRequest {
            game_time_ms: Some(1_000),
            ..memory("The bell rang", 0.7, "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_an_hour.memory.as_ref().unwrap().game_time_ms, 1_000);
    assert_eq!(
        at_an_hour.dropped_memory_ids,
        vec![ids[1]],
        "the least important goes first"
    );
    ids.push(at_an_hour.memory.unwrap().id);

    let first_page = client
        .list_memories(pb::ListMemoriesRequest {
            npc_id: tom.id,
            limit: 2,
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<i64> = first_page.memories.iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![ids[3], ids[2]], "newest first");
    let second_page = client
        .list_memories(pb::ListMemoriesRequest {
            npc_id: tom.id,
            limit: 2,
            cursor: first_page.next_cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<i64> = second_page.memories.iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![ids[0]]);

    let bad = client.record_memory(memory("x", 1.5, "")).await;
    expect_status(
        bad,
        Code::InvalidArgument,
        "importance must be between 0 and 1, got 1.5",
    );
    let kind = client
        .record_memory(pb::RecordMemoryRequest {
            kind: "Saw It".to_owned(),
            ..memory("x", 0.5, "")
        })
        .await;
    expect_status(kind, Code::InvalidArgument, "kind must be 1 to 32 lowercase letters");
    let stranger = client
        .record_memory(pb::RecordMemoryRequest {
            npc_id: 999_999,
            ..memory("x", 0.5, "")
        })
        .await;
    expect_status(stranger, Code::NotFound, "npc 999999 not found");
    npc.finish().await;
}

async fn a_world_that_is_down_makes_writes_unavailable(backend: Backend) {
    let Some(npc) = TestService::<Npc>::start(backend, config, peers([("world", closed_port_url().as_str())])).await
    else {
        return;
    };
    let mut client = NpcServiceClient::new(npc.channel());
    // Readiness is the database only: reads work without the world.
    assert_eq!(npc.ready().await, Ok(()));
    let create = client
        .create_npc(pb::CreateNpcRequest {
            npc: Some(spec("Old Tom", 1)),
            idempotency_key: String::new(),
        })
        .await;
    expect_status(create, Code::Unavailable, "the world service is unavailable");
    let listed = client
        .list_npcs(pb::ListNpcsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.npcs.is_empty());
    npc.finish().await;
}
