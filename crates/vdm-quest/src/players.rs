//! The player service, as the quest service needs it: a player's level, to
//! enforce a quest's `level_requirement`, and the grant of a completed
//! quest's reward. The one place this crate speaks `vdm.player.v1`.

use tonic::Code;
use vdm_kit::ErrorCode;
use vdm_kit::grpc::GrpcChannel;
use vdm_proto::player::v1 as pb;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;

use crate::domain::RewardGrant;
use crate::error::{QuestError, QuestResult};

/// A client of the player service (cheap to clone).
#[derive(Clone)]
pub struct Players {
    client: PlayerServiceClient<GrpcChannel>,
}

impl Players {
    /// A client over this channel (lazily connecting, or in this process).
    pub fn new(channel: GrpcChannel) -> Players {
        Players {
            client: PlayerServiceClient::new(channel),
        }
    }

    /// The level of a player. A player the player service does not know yet
    /// has no xp: level 1, as every new player.
    pub async fn level(&self, player_id: i64) -> QuestResult<u32> {
        match self
            .client
            .clone()
            .get_profile(pb::GetProfileRequest { player_id })
            .await
        {
            Ok(profile) => Ok(profile.into_inner().level.max(1)),
            Err(status) if status.code() == Code::NotFound => Ok(1),
            Err(status) if ErrorCode::from_grpc(status.code()).is_retryable() => {
                Err(QuestError::PeerUnavailable("player", status))
            }
            Err(status) => Err(QuestError::Peer("player", status)),
        }
    }

    /// Applies a completed quest's reward, once by its grant id: a second
    /// call with the same grant (a relay retrying, another replica's relay)
    /// gets the first call's result and changes nothing.
    pub async fn grant_reward(&self, grant: &RewardGrant) -> Result<(), tonic::Status> {
        let request = pb::GrantRewardRequest {
            grant_id: grant.grant_id.clone(),
            player_id: grant.player_id,
            gold: grant.gold,
            xp: grant.xp,
            item_ids: grant.item_ids.clone(),
            reason: grant.reason.clone(),
            source_id: grant.source_id.clone(),
            standings: grant
                .standings()
                .into_iter()
                .map(|(faction_id, delta)| pb::StandingChange { faction_id, delta })
                .collect(),
        };
        self.client.clone().grant_reward(request).await.map(|_| ())
    }
}
