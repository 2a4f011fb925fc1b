//! The world service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`): regions on the hex map, factions and
//! their relations, the clock, world events.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tonic::Code;
use vdm_kit::bus::EventBody;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::service::Peers;
use vdm_kit::testing::{Backend, TestService, expect_status};
use vdm_proto::world::v1 as pb;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;
use vdm_world::{World, WorldConfig};

vdm_kit::backend_tests!(
    regions_are_found_by_hex_and_know_their_neighbours,
    a_cell_belongs_to_one_region,
    bad_regions_name_the_field,
    factions_have_a_clamped_relation_per_pair,
    an_event_is_published_once_per_key,
    the_clock_runs_from_day_one_at_eight,
);

/// One game second per real second, so a test sees the clock barely move.
const CLOCK_RATE: f64 = 1.0;
const HOUR_MS: i64 = 3_600_000;

async fn start(backend: Backend) -> Option<(TestService<World>, WorldServiceClient<GrpcChannel>)> {
    let world = TestService::<World>::start(
        backend,
        |database, cache| WorldConfig {
            database,
            cache,
            clock_rate: CLOCK_RATE,
            artificial_delay: None,
        },
        Peers::default(),
    )
    .await?;
    let client = WorldServiceClient::new(world.channel());
    Some((world, client))
}

fn hexes(cells: &[(i32, i32)]) -> Vec<pb::Hex> {
    cells.iter().map(|&(q, r)| pb::Hex { q, r }).collect()
}

fn region(id: i64, name: &str, cells: &[(i32, i32)]) -> pb::UpsertRegionRequest {
    pb::UpsertRegionRequest {
        region: Some(pb::RegionSpec {
            id,
            name: name.to_owned(),
            biome: "farmland".to_owned(),
            cells: hexes(cells),
        }),
    }
}

async fn upsert(
    client: &mut WorldServiceClient<GrpcChannel>,
    request: pb::UpsertRegionRequest,
) -> pb::UpsertRegionResponse {
    client.upsert_region(request).await.unwrap().into_inner()
}

async fn region_at(client: &mut WorldServiceClient<GrpcChannel>, q: i32, r: i32) -> Result<pb::Region, tonic::Status> {
    client
        .get_region_at(pb::GetRegionAtRequest {
            hex: Some(pb::Hex { q, r }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn regions_are_found_by_hex_and_know_their_neighbours(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    assert_eq!(world.ready().await, Ok(()));

    let vale = upsert(&mut client, region(1, "Millbrook Vale", &[(1, 0), (0, 0)])).await;
    assert!(vale.created);
    let vale = vale.region.unwrap();
    assert_eq!(vale.name, "Millbrook Vale");
    assert_eq!(vale.cells, hexes(&[(0, 0), (1, 0)]), "cells come back in q, r order");
    assert!(vale.neighbor_ids.is_empty());

    // Looked up (and cached) before the neighbour exists.
    assert_eq!(region_at(&mut client, 1, 0).await.unwrap().id, 1);
    let outside = client
        .get_region_at(pb::GetRegionAtRequest {
            hex: Some(pb::Hex { q: 2, r: 0 }),
        })
        .await;
    expect_status(outside, Code::NotFound, "hex (2, 0) is outside the map");

    let wood = upsert(&mut client, region(2, "Ashwood", &[(2, 0), (3, 0)])).await;
    assert_eq!(wood.region.unwrap().neighbor_ids, vec![1]);
    // The write dropped the cached miss and the cached neighbour list.
    assert_eq!(region_at(&mut client, 2, 0).await.unwrap().id, 2);
    let vale = client
        .get_region(pb::GetRegionRequest { id: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vale.neighbor_ids, vec![2]);

    // Replacing a region by id moves its cells.
    let moved = upsert(&mut client, region(2, "Ashwood", &[(9, 9)])).await;
    assert!(!moved.created);
    expect_status(
        client
            .get_region_at(pb::GetRegionAtRequest {
                hex: Some(pb::Hex { q: 2, r: 0 }),
            })
            .await,
        Code::NotFound,
        "hex (2, 0) is outside the map",
    );
    assert_eq!(region_at(&mut client, 9, 9).await.unwrap().id, 2);

    let listed = client
        .list_regions(pb::ListRegionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let summary: Vec<(i64, Vec<i64>)> = listed.regions.iter().map(|r| (r.id, r.neighbor_ids.clone())).collect();
    assert_eq!(summary, vec![(1, vec![]), (2, vec![])]);

    let unknown = client.get_region(pb::GetRegionRequest { id: 77 }).await;
    expect_status(unknown, Code::NotFound, "region 77 not found");
    world.finish().await;
}

async fn a_cell_belongs_to_one_region(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    upsert(&mut client, region(1, "Millbrook Vale", &[(0, 0), (1, 0)])).await;
    let taken = client.upsert_region(region(3, "Fen", &[(5, 5), (1, 0)])).await;
    expect_status(
        taken,
        Code::FailedPrecondition,
        "hex (1, 0) already belongs to region 1",
    );
    let fen = client.get_region(pb::GetRegionRequest { id: 3 }).await;
    expect_status(fen, Code::NotFound, "region 3 not found");
    assert_eq!(region_at(&mut client, 1, 0).await.unwrap().id, 1);
    let none = client
        .get_region_at(pb::GetRegionAtRequest {
            hex: Some(pb::Hex { q: 5, r: 5 }),
        })
        .await;
    expect_status(none, Code::NotFound, "outside the map");
    world.finish().await;
}

async fn bad_regions_name_the_field(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    let missing = client.upsert_region(pb::UpsertRegionRequest { region: None }).await;
    expect_status(missing, Code::InvalidArgument, "region is required");

    type Change = fn(&mut pb::RegionSpec);
    let cases: Vec<(Change, &str)> = vec![
        (|r| r.id = 0, "id must be a positive id, got 0"),
        (|r| r.name = " ".to_owned(), "name must not be empty"),
        (
            |r| r.biome = "Deep Forest".to_owned(),
            "biome must be 1 to 32 lowercase letters, digits or underscores, starting with a letter, got \"Deep Forest\"",
        ),
        (|r| r.cells.clear(), "cells must hold at least one cell"),
        (|r| r.cells.push(pb::Hex { q: 0, r: 0 }), "cells holds (0, 0) twice"),
        (
            |r| r.cells.push(pb::Hex { q: 100_001, r: 0 }),
            "cells: (100001, 0) is off the map",
        ),
    ];
    for (change, message) in cases {
        let mut request = region(1, "Millbrook Vale", &[(0, 0)]);
        change(request.region.as_mut().unwrap());
        expect_status(client.upsert_region(request).await, Code::InvalidArgument, message);
    }
    let no_hex = client.get_region_at(pb::GetRegionAtRequest { hex: None }).await;
    expect_status(no_hex, Code::InvalidArgument, "hex is required");
    let listed = client
        .list_regions(pb::ListRegionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.regions.is_empty(), "nothing refused was stored");
    world.finish().await;
}

async fn factions_have_a_clamped_relation_per_pair(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    for (id, name) in [(3, "Red Hand"), (1, "Millers' Guild"), (2, "Wardens")] {
        let saved = client
            .upsert_faction(pb::UpsertFactionRequest {
                faction: Some(pb::Faction {
                    id,
                    name: name.to_owned(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(saved.created);
    }
    let renamed = client
        .upsert_faction(pb::UpsertFactionRequest {
            faction: Some(pb::Faction {
                id: 2,
                name: "Royal Wardens".to_owned(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!renamed.created);
    let factions = client
        .list_factions(pb::ListFactionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .factions;
    let names: Vec<(i64, &str)> = factions.iter().map(|f| (f.id, f.name.as_str())).collect();
    assert_eq!(
        names,
        vec![(1, "Millers' Guild"), (2, "Royal Wardens"), (3, "Red Hand")]
    );

    let scores = |relations: &[pb::FactionRelation]| -> Vec<(i64, i64, i32)> {
        relations.iter().map(|r| (r.faction_a, r.faction_b, r.score)).collect()
    };
    let all = client
        .get_faction_relations(pb::GetFactionRelationsRequest { faction_id: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scores(&all.relations), vec![(1, 2, 0), (1, 3, 0), (2, 3, 0)]);

    let set = client
        .set_faction_relation(pb::SetFactionRelationRequest {
            faction_a: 3,
            faction_b: 1,
            score: -40,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((set.faction_a, set.faction_b, set.score), (1, 3, -40));
    let adjusted = client
        .adjust_faction_relation(pb::AdjustFactionRelationRequest {
            faction_a: 1,
            faction_b: 3,
            delta: -70,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(adjusted.score, -100, "clamped at open war");
    let friends = client
        .adjust_faction_relation(pb::AdjustFactionRelationRequest {
            faction_a: 2,
            faction_b: 1,
            delta: 25,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((friends.faction_a, friends.faction_b, friends.score), (1, 2, 25));

    let of_three = client
        .get_faction_relations(pb::GetFactionRelationsRequest { faction_id: Some(3) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scores(&of_three.relations), vec![(1, 3, -100), (2, 3, 0)]);

    let unknown = client
        .get_faction_relations(pb::GetFactionRelationsRequest { faction_id: Some(9) })
        .await;
    expect_status(unknown, Code::NotFound, "faction 9 not found");
    let itself = client
        .set_faction_relation(pb::SetFactionRelationRequest {
            faction_a: 2,
            faction_b: 2,
            score: 10,
        })
        .await;
    expect_status(
        itself,
        Code::InvalidArgument,
        "a faction has no relation with itself (2)",
    );
    let too_high = client
        .set_faction_relation(pb::SetFactionRelationRequest {
            faction_a: 1,
            faction_b: 2,
            score: 101,
        })
        .await;
    expect_status(
        too_high,
        Code::InvalidArgument,
        "score must be between -100 and 100, got 101",
    );
    let too_far = client
        .adjust_faction_relation(pb::AdjustFactionRelationRequest {
            faction_a: 1,
            faction_b: 2,
            delta: 201,
        })
        .await;
    expect_status(
        too_far,
        Code::InvalidArgument,
        "delta must be between -200 and 200, got 201",
    );
    let unnamed = client
        .upsert_faction(pb::UpsertFactionRequest {
            faction: Some(pb::Faction {
                id: 4,
                name: String::new(),
            }),
        })
        .await;
    expect_status(unnamed, Code::InvalidArgument, "name must not be empty");
    world.finish().await;
}

async fn an_event_is_published_once_per_key(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    upsert(&mut client, region(1, "Millbrook Vale", &[(0, 0)])).await;
    upsert(&mut client, region(2, "Ashwood", &[(4, 4)])).await;
    let mut events = world.watch_events().await;

    let storm = |text: &str| pb::PublishWorldEventRequest {
        kind: "storm".to_owned(),
        text: text.to_owned(),
        region_ids: vec![2, 1, 2],
        idempotency_key: "storm-1".to_owned(),
    };
    let first = client
        .publish_world_event(storm("A storm floods the mill."))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    let event = first.event.unwrap();
    assert_eq!(event.kind, "storm");
    assert_eq!(event.region_ids, vec![1, 2], "deduplicated, ascending");
    assert!(event.game_time_ms >= 8 * HOUR_MS);

    let pushed = events.next("world.event").await;
    assert_eq!(pushed.region_ids, vec![1, 2]);
    let Some(EventBody::WorldEvent(pushed)) = &pushed.body else {
        panic!("not a world event: {pushed:?}")
    };
    assert_eq!(pushed.id, event.id);
    assert_eq!(pushed.text, "A storm floods the mill.");

    let again = client
        .publish_world_event(storm("A storm floods the mill."))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.event.unwrap(), event);
    let other = client.publish_world_event(storm("A storm floods the forge.")).await;
    expect_status(
        other,
        Code::AlreadyExists,
        "idempotency key \"storm-1\" was already used for a different request",
    );
    // Neither the replay nor the refused request reached the players.
    events.assert_none("world.event", Duration::from_millis(300)).await;

    let unknown = client
        .publish_world_event(pb::PublishWorldEventRequest {
            kind: "festival".to_owned(),
            text: "Lanterns everywhere.".to_owned(),
            region_ids: vec![1, 99],
            idempotency_key: String::new(),
        })
        .await;
    expect_status(unknown, Code::InvalidArgument, "region_ids names unknown region 99");
    let bad_kind = client
        .publish_world_event(pb::PublishWorldEventRequest {
            kind: "Big Storm".to_owned(),
            text: "x".to_owned(),
            region_ids: vec![1],
            idempotency_key: String::new(),
        })
        .await;
    expect_status(
        bad_kind,
        Code::InvalidArgument,
        "kind must be 1 to 32 lowercase letters, digits or underscores",
    );

    let festival = client
        .publish_world_event(pb::PublishWorldEventRequest {
            kind: "festival".to_owned(),
            text: "Lanterns everywhere.".to_owned(),
            region_ids: vec![2],
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let in_vale = client
        .list_world_events(pb::ListWorldEventsRequest {
            region_id: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = in_vale.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![event.id]);
    let first_page = client
        .list_world_events(pb::ListWorldEventsRequest {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.events[0].id, event.id, "oldest first");
    let second_page = client
        .list_world_events(pb::ListWorldEventsRequest {
            limit: 1,
            cursor: first_page.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = second_page.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![festival.id]);

    let got = client
        .get_world_event(pb::GetWorldEventRequest { id: event.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, event);
    let missing = client.get_world_event(pb::GetWorldEventRequest { id: 424_242 }).await;
    expect_status(missing, Code::NotFound, "world event 424242 not found");
    world.finish().await;
}

async fn the_clock_runs_from_day_one_at_eight(backend: Backend) {
    let Some((world, mut client)) = start(backend).await else {
        return;
    };
    let before = client
        .get_world_time(pb::GetWorldTimeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.rate, CLOCK_RATE);
    assert_eq!((before.day, before.hour), (1, 8));
    assert!(before.game_time_ms >= 8 * HOUR_MS);
    // One real second is one game second at this rate; a test takes less
    // than a game minute.
    assert!(before.game_time_ms < 8 * HOUR_MS + 60_000, "{before:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = client
        .get_world_time(pb::GetWorldTimeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(after.real_time_ms >= before.real_time_ms + 50);
    assert!(
        after.game_time_ms >= before.game_time_ms + 40,
        "{before:?} then {after:?}"
    );
    world.finish().await;
}
