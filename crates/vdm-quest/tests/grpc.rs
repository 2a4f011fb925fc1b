//! The quest service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`): what a caller sees of every RPC.

#![allow(clippy::unwrap_used)]

use tonic::Code;
use vdm_kit::bus::EventBody;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::service::{GrpcApp, Listener, Peers};
use vdm_kit::testing::{Backend, TestService, expect_status};
use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_quest::{Quest, QuestConfig};

vdm_kit::backend_tests!(
    create_get_and_list_pages_with_a_cursor,
    a_key_replays_its_quest_and_refuses_another_body,
    bad_requests_name_the_field,
    unknown_ids_are_not_found,
    a_level_requirement_needs_the_player_service,
    progress_runs_the_state_machine_and_is_pushed,
    updates_and_deletes_are_seen_at_once,
    two_replicas_writing_one_player_quest_lose_nothing,
);

/// Accepting and abandoning, again and again, update the player's row in
/// place on Postgres (heap-only tuples: no new index entries, old versions
/// pruned as the page is read), so its lookups stay one row long however
/// often it changes, autovacuum or not.
#[tokio::test]
async fn accept_and_abandon_update_the_row_in_place() {
    let Some((quest, mut client)) = start(Backend::External).await else {
        return;
    };
    let created = create(&mut client, spec("The mill", 10), "in-place").await;
    let key = (41, created.quest.unwrap().id);
    for _ in 0..10 {
        assert_eq!(accept(&mut client, key).await, pb::QuestStatus::Active);
        assert_eq!(abandon(&mut client, key).await, pb::QuestStatus::Abandoned);
    }
    let database = &quest.config().database;
    let db = sea_orm::Database::connect(database.url.expose()).await.unwrap();
    let counts = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'player_quests'",
        [database.schema.clone().into()],
    );
    // The server's statistics arrive when each pooled backend reports
    // them: within about ten seconds of its last transaction.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (updated, in_place) = loop {
        let row = sea_orm::ConnectionTrait::query_one_raw(&db, counts.clone())
            .await
            .unwrap()
            .unwrap();
        let updated: i64 = row.try_get_by_index(0).unwrap();
        let in_place: i64 = row.try_get_by_index(1).unwrap();
        if updated >= 19 || std::time::Instant::now() > deadline {
            break (updated, in_place);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(
        updated >= 19,
        "19 updates after the first accept's insert, {updated} counted"
    );
    assert_eq!(in_place, updated, "every status change is a heap-only update");
    db.close().await.unwrap();
    quest.finish().await;
}

async fn start(backend: Backend) -> Option<(TestService<Quest>, QuestServiceClient<GrpcChannel>)> {
    let quest = TestService::<Quest>::start(
        backend,
        |database, cache| QuestConfig {
            database,
            cache,
            peer_timeout: std::time::Duration::from_secs(2),
            outbox_poll: std::time::Duration::from_millis(200),
        },
        Peers::default(),
    )
    .await?;
    let client = QuestServiceClient::new(quest.channel());
    Some((quest, client))
}

fn spec(title: &str, region_id: i64) -> pb::QuestSpec {
    pb::QuestSpec {
        title: title.to_owned(),
        description: "The miller is afraid.".to_owned(),
        giver_npc_id: 7,
        region_id,
        // Every player is level 1: accepting asks no player service.
        level_requirement: 1,
        reward: Some(pb::Reward {
            gold: 50,
            xp: 120,
            item_ids: vec![11, 12],
            ..Default::default()
        }),
        objectives: vec![
            pb::ObjectiveSpec {
                description: "Kill wolves".to_owned(),
                target_count: 3,
            },
            pb::ObjectiveSpec {
                description: "Tell the miller".to_owned(),
                target_count: 1,
            },
        ],
    }
}

async fn create(
    client: &mut QuestServiceClient<GrpcChannel>,
    spec: pb::QuestSpec,
    key: &str,
) -> pb::CreateQuestResponse {
    client
        .create_quest(pb::CreateQuestRequest {
            quest: Some(spec),
            idempotency_key: key.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn create_get_and_list_pages_with_a_cursor(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    assert_eq!(quest.ready().await, Ok(()));

    let first = create(&mut client, spec("Wolves at the Mill", 10), "").await;
    assert!(!first.replayed);
    let created = first.quest.unwrap();
    assert!(created.id > 0);
    assert_eq!(created.title, "Wolves at the Mill");
    assert_eq!(created.region_id, 10);
    assert_eq!(created.level_requirement, 1);
    assert_eq!(created.reward.as_ref().unwrap().item_ids, vec![11, 12]);
    let targets: Vec<(String, u32)> = created
        .objectives
        .iter()
        .map(|o| (o.description.clone(), o.target_count))
        .collect();
    assert_eq!(
        targets,
        vec![("Kill wolves".to_owned(), 3), ("Tell the miller".to_owned(), 1)]
    );
    assert!(created.objectives.iter().all(|o| o.id > 0));
    assert!(created.created_at_ms > 0);

    let got = client
        .get_quest(pb::GetQuestRequest { id: created.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let second = create(&mut client, spec("Bandits on the Road", 10), "")
        .await
        .quest
        .unwrap();
    let elsewhere = create(&mut client, spec("Lost Sheep", 11), "").await.quest.unwrap();
    let third = create(&mut client, spec("The Drowned Bell", 10), "")
        .await
        .quest
        .unwrap();

    let page = client
        .list_quests(pb::ListQuestsRequest {
            region_id: Some(10),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = page.quests.iter().map(|q| q.id).collect();
    assert_eq!(ids, vec![created.id, second.id]);
    assert!(!page.next_cursor.is_empty());
    let rest = client
        .list_quests(pb::ListQuestsRequest {
            region_id: Some(10),
            limit: 2,
            cursor: page.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = rest.quests.iter().map(|q| q.id).collect();
    assert_eq!(ids, vec![third.id]);
    assert_eq!(rest.next_cursor, "");

    let batch = client
        .batch_get_quests(pb::BatchGetQuestsRequest {
            ids: vec![elsewhere.id, 999_999, created.id],
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<i64> = batch.quests.iter().map(|q| q.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![created.id, elsewhere.id]);
    quest.finish().await;
}

async fn a_key_replays_its_quest_and_refuses_another_body(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let first = create(&mut client, spec("Wolves at the Mill", 10), "create-wolves-1").await;
    let again = create(&mut client, spec("Wolves at the Mill", 10), "create-wolves-1").await;
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.quest, first.quest);

    let other = client
        .create_quest(pb::CreateQuestRequest {
            quest: Some(spec("Wolves at the Other Mill", 10)),
            idempotency_key: "create-wolves-1".to_owned(),
        })
        .await;
    expect_status(
        other,
        Code::AlreadyExists,
        "idempotency key \"create-wolves-1\" was already used for a different request",
    );

    let listed = client
        .list_quests(pb::ListQuestsRequest {
            region_id: Some(10),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.quests.len(), 1, "a replay or a conflict creates nothing");
    quest.finish().await;
}

async fn bad_requests_name_the_field(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let missing = client.create_quest(pb::CreateQuestRequest::default()).await;
    expect_status(missing, Code::InvalidArgument, "quest is required");

    type Change = fn(&mut pb::QuestSpec);
    let cases: Vec<(Change, &str)> = vec![
        (|s| s.title = "   ".to_owned(), "title must not be empty"),
        (|s| s.giver_npc_id = -1, "giver_npc_id must be a positive id, got -1"),
        (
            |s| s.level_requirement = 1_001,
            "level_requirement must be at most 1000",
        ),
        (|s| s.objectives.clear(), "objectives must hold at least one objective"),
        (
            |s| s.objectives[1].target_count = 0,
            "objectives[1].target_count must be between 1 and 100000",
        ),
        (
            |s| s.reward.as_mut().unwrap().item_ids.push(-4),
            "reward.item_ids must be positive ids, got -4",
        ),
    ];
    for (change, message) in cases {
        let mut bad = spec("Wolves at the Mill", 10);
        change(&mut bad);
        let refused = client
            .create_quest(pb::CreateQuestRequest {
                quest: Some(bad),
                idempotency_key: String::new(),
            })
            .await;
        expect_status(refused, Code::InvalidArgument, message);
    }

    let long_key = client
        .create_quest(pb::CreateQuestRequest {
            quest: Some(spec("Wolves at the Mill", 10)),
            idempotency_key: "k".repeat(129),
        })
        .await;
    expect_status(long_key, Code::InvalidArgument, "idempotency key must be 1 to 128");
    let cursor = client
        .list_quests(pb::ListQuestsRequest {
            cursor: "not-a-cursor".to_owned(),
            ..Default::default()
        })
        .await;
    expect_status(
        cursor,
        Code::InvalidArgument,
        "cursor \"not-a-cursor\" is not a cursor this list issued",
    );
    let limit = client
        .list_quests(pb::ListQuestsRequest {
            limit: 101,
            ..Default::default()
        })
        .await;
    expect_status(limit, Code::InvalidArgument, "limit must be between 1 and 100");
    let status = client
        .list_player_quests(pb::ListPlayerQuestsRequest {
            player_id: 5,
            status: 42,
            ..Default::default()
        })
        .await;
    expect_status(status, Code::InvalidArgument, "unknown status 42");
    let id = client.get_quest(pb::GetQuestRequest { id: 0 }).await;
    expect_status(id, Code::InvalidArgument, "id must be a positive id, got 0");

    let listed = client
        .list_quests(pb::ListQuestsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.quests.is_empty(), "nothing refused was stored");
    quest.finish().await;
}

async fn a_level_requirement_needs_the_player_service(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let mut high = spec("Wolves at the Mill", 10);
    high.level_requirement = 4;
    let created = create(&mut client, high, "").await.quest.unwrap();
    assert_eq!(created.level_requirement, 4);
    // This service runs without VDM_PLAYER_URL: it cannot read levels, so
    // it refuses rather than let a player under the requirement in.
    let accept = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: created.id,
        })
        .await;
    expect_status(accept, Code::Unavailable, "needs level 4");
    quest.finish().await;
}

async fn unknown_ids_are_not_found(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let get = client.get_quest(pb::GetQuestRequest { id: 4242 }).await;
    expect_status(get, Code::NotFound, "quest 4242 not found");
    let accept = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: 4242,
        })
        .await;
    expect_status(accept, Code::NotFound, "quest 4242 not found");
    let delete = client.delete_quest(pb::DeleteQuestRequest { id: 4242 }).await;
    expect_status(delete, Code::NotFound, "quest 4242 not found");

    let created = create(&mut client, spec("Wolves at the Mill", 10), "")
        .await
        .quest
        .unwrap();
    let advance = client
        .advance_objective(pb::AdvanceObjectiveRequest {
            player_id: 5,
            quest_id: created.id,
            objective_id: created.objectives[0].id,
            amount: 1,
        })
        .await;
    expect_status(
        advance,
        Code::NotFound,
        &format!("player 5 has not accepted quest {}", created.id),
    );
    quest.finish().await;
}

async fn progress_runs_the_state_machine_and_is_pushed(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let created = create(&mut client, spec("Wolves at the Mill", 10), "")
        .await
        .quest
        .unwrap();
    let (wolves, miller) = (created.objectives[0].id, created.objectives[1].id);
    let mut events = quest.watch_events().await;

    let accepted = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: created.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.status(), pb::QuestStatus::Active);
    let progress: Vec<(i64, u32, u32)> = accepted
        .objectives
        .iter()
        .map(|o| (o.objective_id, o.progress, o.target_count))
        .collect();
    assert_eq!(progress, vec![(wolves, 0, 3), (miller, 0, 1)]);
    let pushed = events.next("quest.updated").await;
    assert_eq!(pushed.player_id, Some(5));
    let Some(EventBody::QuestUpdated(pq)) = &pushed.body else {
        panic!("not a quest update: {pushed:?}")
    };
    assert_eq!(pq.quest_id, created.id);
    assert_eq!(pq.status(), pb::QuestStatus::Active);

    let twice = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: created.id,
        })
        .await;
    expect_status(
        twice,
        Code::FailedPrecondition,
        &format!("cannot accept quest {}: it is active", created.id),
    );

    let advance = |objective_id: i64, amount: u32| pb::AdvanceObjectiveRequest {
        player_id: 5,
        quest_id: created.id,
        objective_id,
        amount,
    };
    let partly = client.advance_objective(advance(wolves, 2)).await.unwrap().into_inner();
    assert_eq!(partly.status(), pb::QuestStatus::Active);
    assert_eq!(partly.objectives[0].progress, 2);
    let zero = client.advance_objective(advance(wolves, 0)).await;
    expect_status(zero, Code::InvalidArgument, "amount must be between 1 and");
    let stranger = client.advance_objective(advance(wolves + miller + 1000, 1)).await;
    expect_status(
        stranger,
        Code::NotFound,
        &format!(
            "objective {} is not part of quest {}",
            wolves + miller + 1000,
            created.id
        ),
    );
    // Progress stops at the target.
    let capped = client.advance_objective(advance(wolves, 5)).await.unwrap().into_inner();
    assert_eq!(capped.objectives[0].progress, 3);
    assert_eq!(capped.status(), pb::QuestStatus::Active);
    assert_eq!(capped.completed_at_ms, 0);

    let done = client.advance_objective(advance(miller, 1)).await.unwrap().into_inner();
    assert_eq!(done.status(), pb::QuestStatus::Completed);
    assert!(done.completed_at_ms >= done.accepted_at_ms);
    let after = client.advance_objective(advance(wolves, 1)).await;
    expect_status(
        after,
        Code::FailedPrecondition,
        &format!("cannot advance quest {}: it is completed", created.id),
    );
    let abandon = client
        .abandon_quest(pb::AbandonQuestRequest {
            player_id: 5,
            quest_id: created.id,
        })
        .await;
    expect_status(abandon, Code::FailedPrecondition, "it is completed");
    // Every change so far reached the bus, the last one completed.
    let completed = loop {
        let pushed = events.next("quest.updated").await;
        if let Some(EventBody::QuestUpdated(pq)) = &pushed.body
            && pq.status() == pb::QuestStatus::Completed
        {
            break pq.clone();
        }
    };
    assert!(completed.completed_at_ms > 0);

    // An abandoned quest may be taken up again.
    let other = create(&mut client, spec("Bandits on the Road", 10), "")
        .await
        .quest
        .unwrap();
    client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: other.id,
        })
        .await
        .unwrap();
    let abandoned = client
        .abandon_quest(pb::AbandonQuestRequest {
            player_id: 5,
            quest_id: other.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(abandoned.status(), pb::QuestStatus::Abandoned);

    let list = |status: pb::QuestStatus| pb::ListPlayerQuestsRequest {
        player_id: 5,
        status: status as i32,
        ..Default::default()
    };
    let completed = client
        .list_player_quests(list(pb::QuestStatus::Completed))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = completed.quests.iter().map(|q| q.quest_id).collect();
    assert_eq!(ids, vec![created.id]);
    let abandoned = client
        .list_player_quests(list(pb::QuestStatus::Abandoned))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = abandoned.quests.iter().map(|q| q.quest_id).collect();
    assert_eq!(ids, vec![other.id]);

    let again = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 5,
            quest_id: other.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status(), pb::QuestStatus::Active);
    assert!(again.objectives.iter().all(|o| o.progress == 0));
    let everything = client
        .list_player_quests(list(pb::QuestStatus::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(everything.quests.len(), 2);
    assert!(player_quests(&mut client, 6).await.is_empty());
    quest.finish().await;
}

async fn updates_and_deletes_are_seen_at_once(backend: Backend) {
    let Some((quest, mut client)) = start(backend).await else {
        return;
    };
    let created = create(&mut client, spec("Wolves at the Mill", 10), "")
        .await
        .quest
        .unwrap();
    // Read once, so the quest and its region's list are cached before it
    // changes.
    client.get_quest(pb::GetQuestRequest { id: created.id }).await.unwrap();
    assert_eq!(region_titles(&mut client, 10).await, ["Wolves at the Mill"]);

    let updated = client
        .update_quest(pb::UpdateQuestRequest {
            id: created.id,
            title: Some("Wolves at the Old Mill".to_owned()),
            reward: Some(pb::Reward {
                gold: 75,
                xp: 120,
                item_ids: vec![],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.title, "Wolves at the Old Mill");
    assert_eq!(
        updated.description, created.description,
        "unset fields keep their value"
    );
    let got = client
        .get_quest(pb::GetQuestRequest { id: created.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.title, "Wolves at the Old Mill");
    assert_eq!(got.reward.unwrap().gold, 75);
    assert_eq!(got.objectives, created.objectives);
    assert_eq!(
        region_titles(&mut client, 10).await,
        ["Wolves at the Old Mill"],
        "the cached list is dropped with the write"
    );
    let second = create(&mut client, spec("Bandits on the Road", 10), "")
        .await
        .quest
        .unwrap();
    assert_eq!(
        region_titles(&mut client, 10).await,
        ["Wolves at the Old Mill", "Bandits on the Road"],
        "a new quest is listed at once"
    );

    // This replica's own work reads the definition anew after its change:
    // an accept read it just before the requirement was raised, and the
    // next one is refused (no player service here reads levels).
    let player = (21, created.id);
    assert_eq!(accept(&mut client, player).await, pb::QuestStatus::Active);
    assert_eq!(abandon(&mut client, player).await, pb::QuestStatus::Abandoned);
    client
        .update_quest(pb::UpdateQuestRequest {
            id: created.id,
            level_requirement: Some(4),
            ..Default::default()
        })
        .await
        .unwrap();
    let (player_id, quest_id) = player;
    let raised = client
        .accept_quest(pb::AcceptQuestRequest { player_id, quest_id })
        .await;
    expect_status(raised, Code::Unavailable, "needs level 4");

    let bad = client
        .update_quest(pb::UpdateQuestRequest {
            id: created.id,
            title: Some(String::new()),
            ..Default::default()
        })
        .await;
    expect_status(bad, Code::InvalidArgument, "title must not be empty");

    client
        .delete_quest(pb::DeleteQuestRequest { id: created.id })
        .await
        .unwrap();
    let gone = client.get_quest(pb::GetQuestRequest { id: created.id }).await;
    expect_status(gone, Code::NotFound, &format!("quest {} not found", created.id));
    let gone = client
        .accept_quest(pb::AcceptQuestRequest {
            player_id: 22,
            quest_id: created.id,
        })
        .await;
    expect_status(gone, Code::NotFound, &format!("quest {} not found", created.id));
    assert_eq!(
        region_titles(&mut client, 10).await,
        [second.title.as_str()],
        "a deleted quest leaves the list at once"
    );
    quest.finish().await;
}

/// The titles of a region's quests, in list order.
/// Accepts a player quest that must be accepted; its status.
async fn accept(client: &mut QuestServiceClient<GrpcChannel>, (player_id, quest_id): (i64, i64)) -> pb::QuestStatus {
    let request = pb::AcceptQuestRequest { player_id, quest_id };
    client.accept_quest(request).await.unwrap().into_inner().status()
}

/// Abandons a player quest that must be abandoned; its status.
async fn abandon(client: &mut QuestServiceClient<GrpcChannel>, (player_id, quest_id): (i64, i64)) -> pb::QuestStatus {
    let request = pb::AbandonQuestRequest { player_id, quest_id };
    client.abandon_quest(request).await.unwrap().into_inner().status()
}

/// Every quest of `player_id`, any status (the first page).
async fn player_quests(client: &mut QuestServiceClient<GrpcChannel>, player_id: i64) -> Vec<pb::PlayerQuest> {
    client
        .list_player_quests(pb::ListPlayerQuestsRequest {
            player_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .quests
}

async fn region_titles(client: &mut QuestServiceClient<GrpcChannel>, region_id: i64) -> Vec<String> {
    client
        .list_quests(pb::ListQuestsRequest {
            region_id: Some(region_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .quests
        .into_iter()
        .map(|q| q.title)
        .collect()
}

/// Each replica starts a write from the row it last wrote (no read); a row
/// another replica changed since must neither be written over nor decide a
/// refusal.
async fn two_replicas_writing_one_player_quest_lose_nothing(backend: Backend) {
    let Some((quest, mut a)) = start(backend).await else {
        return;
    };
    // A second replica of the service on the same database and cache.
    let listener = Listener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = listener.url();
    let replica = GrpcApp::build::<Quest>(listener, quest.config(), &Peers::default())
        .await
        .unwrap();
    let stop = vdm_kit::shutdown::CancellationToken::new();
    let running = tokio::spawn(replica.run_until(stop.clone().cancelled_owned()));
    let mut b = QuestServiceClient::new(vdm_kit::grpc::channel(&url, std::time::Duration::from_secs(5)).unwrap());

    let created = create(&mut a, spec("Two Doors", 3), "").await.quest.unwrap();
    let wolves = created.objectives[0].id;
    let ids = |player_id: i64| (player_id, created.id);
    let advance = |(player_id, quest_id): (i64, i64)| pb::AdvanceObjectiveRequest {
        player_id,
        quest_id,
        objective_id: wolves,
        amount: 1,
    };

    // A remembers "active"; B abandons; A's accept must not be refused as
    // "it is active" on what it remembers.
    assert_eq!(accept(&mut a, ids(9)).await, pb::QuestStatus::Active);
    assert_eq!(abandon(&mut b, ids(9)).await, pb::QuestStatus::Abandoned);
    assert_eq!(accept(&mut a, ids(9)).await, pb::QuestStatus::Active);
    // B remembers "abandoned" (two writes behind A): its abandon must see
    // the active quest, and its next accept must find it abandoned.
    assert_eq!(abandon(&mut b, ids(9)).await, pb::QuestStatus::Abandoned);
    let (player_id, quest_id) = ids(9);
    let twice = a.abandon_quest(pb::AbandonQuestRequest { player_id, quest_id }).await;
    expect_status(twice, Code::FailedPrecondition, "it is abandoned");
    assert_eq!(accept(&mut b, ids(9)).await, pb::QuestStatus::Active);

    // Progress through both replicas in turn adds up: no write starts from
    // a row the other one has changed since.
    let mut last = None;
    for mut client in [a.clone(), b.clone(), a.clone()] {
        last = Some(client.advance_objective(advance(ids(9))).await.unwrap().into_inner());
    }
    assert_eq!(last.unwrap().objectives[0].progress, 3);
    let listed = player_quests(&mut b, 9).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].objectives[0].progress, 3);

    stop.cancel();
    running.await.unwrap().unwrap();
    quest.finish().await;
}
