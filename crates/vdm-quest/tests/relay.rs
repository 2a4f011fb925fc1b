//! The outbox relay against stand-in player and NPC services (`Stub`): a
//! completion's reward is delivered with `GrantReward` under its grant id,
//! retried while the player service fails, given up when it refuses, and
//! never sent for a quest that gives nothing; the giver's change of
//! disposition goes to `AdjustDisposition` under its key, retried on its
//! own while the NPC service fails.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::{Request, Response, Status};
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::testing::{Backend, Stub, TestService, peers};
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::npc::v1::npc_service_server::{NpcService, NpcServiceServer};
use vdm_proto::player::v1 as player_pb;
use vdm_proto::player::v1::player_service_server::{PlayerService, PlayerServiceServer};
use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_quest::{Quest, QuestConfig};

vdm_kit::backend_tests!(
    rewards_are_retried_until_delivered_and_refusals_are_final,
    dispositions_are_retried_on_their_own_until_delivered,
);

/// Player 1 fails with Unavailable on its first two grants; player 2 is
/// unknown (NotFound); every other grant succeeds. Records every grant.
#[derive(Default, Clone)]
struct FakePlayers {
    grants: Arc<Mutex<Vec<player_pb::GrantRewardRequest>>>,
}

impl FakePlayers {
    fn calls(&self, grant_id: &str) -> usize {
        self.grants
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.grant_id == grant_id)
            .count()
    }
}

fn unused<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not used by the quest service"))
}

#[tonic::async_trait]
impl PlayerService for FakePlayers {
    async fn grant_reward(
        &self,
        request: Request<player_pb::GrantRewardRequest>,
    ) -> Result<Response<player_pb::ChangeResponse>, Status> {
        let grant = request.into_inner();
        let player_id = grant.player_id;
        let tries = {
            let mut grants = self.grants.lock().unwrap();
            grants.push(grant);
            grants.iter().filter(|g| g.player_id == player_id).count()
        };
        match player_id {
            1 if tries <= 2 => Err(Status::unavailable("restarting")),
            2 => Err(Status::not_found("player 2 not found")),
            _ => Ok(Response::new(player_pb::ChangeResponse::default())),
        }
    }

    async fn get_profile(
        &self,
        _: Request<player_pb::GetProfileRequest>,
    ) -> Result<Response<player_pb::Profile>, Status> {
        unused()
    }
    async fn sign_in_device(
        &self,
        _: Request<player_pb::SignInDeviceRequest>,
    ) -> Result<Response<player_pb::SignInDeviceResponse>, Status> {
        unused()
    }
    async fn rotate_session(
        &self,
        _: Request<player_pb::RotateSessionRequest>,
    ) -> Result<Response<player_pb::RotateSessionResponse>, Status> {
        unused()
    }
    async fn revoke_session(
        &self,
        _: Request<player_pb::RevokeSessionRequest>,
    ) -> Result<Response<player_pb::RevokeSessionResponse>, Status> {
        unused()
    }
    async fn revoke_player_sessions(
        &self,
        _: Request<player_pb::RevokePlayerSessionsRequest>,
    ) -> Result<Response<player_pb::RevokePlayerSessionsResponse>, Status> {
        unused()
    }
    async fn register_player(
        &self,
        _: Request<player_pb::RegisterPlayerRequest>,
    ) -> Result<Response<player_pb::RegisterPlayerResponse>, Status> {
        unused()
    }
    async fn list_revocations(
        &self,
        _: Request<player_pb::ListRevocationsRequest>,
    ) -> Result<Response<player_pb::ListRevocationsResponse>, Status> {
        unused()
    }
    async fn update_profile(
        &self,
        _: Request<player_pb::UpdateProfileRequest>,
    ) -> Result<Response<player_pb::Profile>, Status> {
        unused()
    }
    async fn put_item(&self, _: Request<player_pb::PutItemRequest>) -> Result<Response<player_pb::Item>, Status> {
        unused()
    }
    async fn get_item(&self, _: Request<player_pb::GetItemRequest>) -> Result<Response<player_pb::Item>, Status> {
        unused()
    }
    async fn list_items(
        &self,
        _: Request<player_pb::ListItemsRequest>,
    ) -> Result<Response<player_pb::ListItemsResponse>, Status> {
        unused()
    }
    async fn get_inventory(
        &self,
        _: Request<player_pb::GetInventoryRequest>,
    ) -> Result<Response<player_pb::Inventory>, Status> {
        unused()
    }
    async fn grant(&self, _: Request<player_pb::GrantRequest>) -> Result<Response<player_pb::ChangeResponse>, Status> {
        unused()
    }
    async fn remove(
        &self,
        _: Request<player_pb::RemoveRequest>,
    ) -> Result<Response<player_pb::ChangeResponse>, Status> {
        unused()
    }
    async fn list_ledger(
        &self,
        _: Request<player_pb::ListLedgerRequest>,
    ) -> Result<Response<player_pb::ListLedgerResponse>, Status> {
        unused()
    }
    async fn list_standings(
        &self,
        _: Request<player_pb::ListStandingsRequest>,
    ) -> Result<Response<player_pb::ListStandingsResponse>, Status> {
        unused()
    }
}

/// The NPC service as the relay sees it: NPC 7 is of faction 3, and its
/// first two disposition changes fail with Unavailable. Records every
/// change asked for.
#[derive(Default, Clone)]
struct FakeNpcs {
    changes: Arc<Mutex<Vec<npc_pb::AdjustDispositionRequest>>>,
}

impl FakeNpcs {
    fn calls(&self, key: &str) -> usize {
        self.changes
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.idempotency_key == key)
            .count()
    }
}

#[tonic::async_trait]
impl NpcService for FakeNpcs {
    async fn adjust_disposition(
        &self,
        request: Request<npc_pb::AdjustDispositionRequest>,
    ) -> Result<Response<npc_pb::Disposition>, Status> {
        let change = request.into_inner();
        let tries = {
            let mut changes = self.changes.lock().unwrap();
            changes.push(change.clone());
            changes.len()
        };
        if tries <= 2 {
            return Err(Status::unavailable("restarting"));
        }
        Ok(Response::new(npc_pb::Disposition {
            npc_id: change.npc_id,
            player_id: change.player_id,
            score: change.delta,
            updated_at_ms: 1,
        }))
    }

    async fn get_npc(&self, request: Request<npc_pb::GetNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(npc_pb::Npc {
            id,
            faction_id: Some(3),
            ..Default::default()
        }))
    }

    async fn create_npc(
        &self,
        _: Request<npc_pb::CreateNpcRequest>,
    ) -> Result<Response<npc_pb::CreateNpcResponse>, Status> {
        unused()
    }
    async fn batch_get_npcs(
        &self,
        _: Request<npc_pb::BatchGetNpcsRequest>,
    ) -> Result<Response<npc_pb::BatchGetNpcsResponse>, Status> {
        unused()
    }
    async fn list_npcs(
        &self,
        _: Request<npc_pb::ListNpcsRequest>,
    ) -> Result<Response<npc_pb::ListNpcsResponse>, Status> {
        unused()
    }
    async fn move_npc(&self, _: Request<npc_pb::MoveNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        unused()
    }
    async fn update_npc(&self, _: Request<npc_pb::UpdateNpcRequest>) -> Result<Response<npc_pb::Npc>, Status> {
        unused()
    }
    async fn get_disposition(
        &self,
        _: Request<npc_pb::GetDispositionRequest>,
    ) -> Result<Response<npc_pb::Disposition>, Status> {
        unused()
    }
    async fn batch_get_dispositions(
        &self,
        _: Request<npc_pb::BatchGetDispositionsRequest>,
    ) -> Result<Response<npc_pb::BatchGetDispositionsResponse>, Status> {
        unused()
    }
    async fn record_memory(
        &self,
        _: Request<npc_pb::RecordMemoryRequest>,
    ) -> Result<Response<npc_pb::RecordMemoryResponse>, Status> {
        unused()
    }
    async fn list_memories(
        &self,
        _: Request<npc_pb::ListMemoriesRequest>,
    ) -> Result<Response<npc_pb::ListMemoriesResponse>, Status> {
        unused()
    }
}

fn spec(reward: pb::Reward) -> pb::QuestSpec {
    pb::QuestSpec {
        title: "Wolves at the Mill".to_owned(),
        description: "The miller is afraid.".to_owned(),
        giver_npc_id: 7,
        region_id: 1,
        level_requirement: 1,
        reward: Some(reward),
        objectives: vec![pb::ObjectiveSpec {
            description: "Kill wolves".to_owned(),
            target_count: 1,
        }],
    }
}

/// Creates a quest (the test spec) with `reward`.
async fn create(client: &mut QuestServiceClient<GrpcChannel>, reward: pb::Reward) -> pb::Quest {
    client
        .create_quest(pb::CreateQuestRequest {
            quest: Some(spec(reward)),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .quest
        .unwrap()
}

async fn complete(client: &mut QuestServiceClient<GrpcChannel>, quest: &pb::Quest, player_id: i64) {
    client
        .accept_quest(pb::AcceptQuestRequest {
            player_id,
            quest_id: quest.id,
        })
        .await
        .unwrap();
    let done = client
        .advance_objective(pb::AdvanceObjectiveRequest {
            player_id,
            quest_id: quest.id,
            objective_id: quest.objectives[0].id,
            amount: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status(), pb::QuestStatus::Completed);
}

/// Waits until `done` holds, for at most 10 s.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rewards_are_retried_until_delivered_and_refusals_are_final(backend: Backend) {
    let fake = FakePlayers::default();
    let player = Stub::serve(PlayerServiceServer::new(fake.clone())).await;
    let Some(quest) = TestService::<Quest>::start(
        backend,
        |database, cache| QuestConfig {
            database,
            cache,
            peer_timeout: Duration::from_secs(2),
            outbox_poll: Duration::from_millis(100),
        },
        peers([("player", player.url().as_str())]),
    )
    .await
    else {
        return;
    };
    let mut client = QuestServiceClient::new(quest.channel());
    let rewarding = create(
        &mut client,
        pb::Reward {
            gold: 50,
            xp: 120,
            item_ids: vec![11, 11],
            ..Default::default()
        },
    )
    .await;
    let empty = create(&mut client, pb::Reward::default()).await;

    // Player 1: refused twice as unavailable, delivered on the third try.
    complete(&mut client, &rewarding, 1).await;
    let first = format!("quest-{}-player-1", rewarding.id);
    eventually("the third delivery", || fake.calls(&first) == 3).await;
    let sent = fake.grants.lock().unwrap()[0].clone();
    assert_eq!((sent.gold, sent.xp, sent.item_ids.as_slice()), (50, 120, &[11, 11][..]));
    assert_eq!(sent.source_id, format!("quest-{}", rewarding.id));

    // Player 2: refused for good, tried once.
    complete(&mut client, &rewarding, 2).await;
    let refused = format!("quest-{}-player-2", rewarding.id);
    eventually("the refused delivery", || fake.calls(&refused) == 1).await;

    // Player 3: a quest that gives nothing queues nothing.
    complete(&mut client, &empty, 3).await;
    complete(&mut client, &rewarding, 3).await;
    let third = format!("quest-{}-player-3", rewarding.id);
    eventually("player 3's delivery", || fake.calls(&third) == 1).await;

    // Several polls later: nothing was sent again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        (fake.calls(&first), fake.calls(&refused), fake.calls(&third)),
        (3, 1, 1)
    );
    assert_eq!(fake.grants.lock().unwrap().len(), 5, "no grant for the empty quest");
    let by_player: HashMap<i64, usize> = fake.grants.lock().unwrap().iter().fold(HashMap::new(), |mut m, g| {
        *m.entry(g.player_id).or_default() += 1;
        m
    });
    assert_eq!(by_player, HashMap::from([(1, 3), (2, 1), (3, 1)]));
    quest.finish().await;
}

async fn dispositions_are_retried_on_their_own_until_delivered(backend: Backend) {
    let players = FakePlayers::default();
    let npcs = FakeNpcs::default();
    let player = Stub::serve(PlayerServiceServer::new(players.clone())).await;
    let npc = Stub::serve(NpcServiceServer::new(npcs.clone())).await;
    let Some(quest) = TestService::<Quest>::start(
        backend,
        |database, cache| QuestConfig {
            database,
            cache,
            peer_timeout: Duration::from_secs(2),
            outbox_poll: Duration::from_millis(100),
        },
        peers([("player", player.url().as_str()), ("npc", npc.url().as_str())]),
    )
    .await
    else {
        return;
    };
    let mut client = QuestServiceClient::new(quest.channel());
    let rewarding = create(
        &mut client,
        pb::Reward {
            gold: 5,
            standing: Some(20),
            disposition: Some(-15),
            ..Default::default()
        },
    )
    .await;
    let empty = create(&mut client, pb::Reward::default()).await;

    // Player 3's reward goes through while the NPC service refuses the
    // disposition change: one receiver down holds up only its own rows.
    complete(&mut client, &rewarding, 3).await;
    let grant = format!("quest-{}-player-3", rewarding.id);
    let key = format!("quest-{}-player-3-disposition", rewarding.id);
    eventually("the reward", || players.calls(&grant) == 1).await;
    eventually("the third disposition try", || npcs.calls(&key) == 3).await;
    let sent = players.grants.lock().unwrap()[0].clone();
    assert_eq!(
        sent.standings,
        [player_pb::StandingChange {
            faction_id: 3,
            delta: 20
        }],
        "the quest's own standing amount"
    );
    let change = npcs.changes.lock().unwrap()[0].clone();
    assert_eq!(
        (change.npc_id, change.player_id, change.delta),
        (7, 3, -15),
        "the quest's own disposition amount"
    );

    // A quest that gives no gold, xp or items still gives the default
    // standing and moves its giver's disposition by the default.
    complete(&mut client, &empty, 3).await;
    let empty_grant = format!("quest-{}-player-3", empty.id);
    let empty_key = format!("quest-{}-player-3-disposition", empty.id);
    eventually("the empty quest's disposition", || npcs.calls(&empty_key) == 1).await;
    eventually("the empty quest's standing", || players.calls(&empty_grant) == 1).await;
    let standing_only = players.grants.lock().unwrap()[1].clone();
    assert_eq!(
        (standing_only.gold, standing_only.xp, standing_only.item_ids.len()),
        (0, 0, 0)
    );
    assert_eq!(
        standing_only.standings,
        [player_pb::StandingChange {
            faction_id: 3,
            delta: 5
        }]
    );
    let change = npcs.changes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(change.delta, 10);

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        (npcs.calls(&key), npcs.calls(&empty_key)),
        (3, 1),
        "acknowledged rows are not sent again"
    );
    assert_eq!(players.grants.lock().unwrap().len(), 2);
    quest.finish().await;
}
