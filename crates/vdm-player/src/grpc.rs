//! The gRPC face of the player service: convert the request, call
//! [`PlayerService`], convert the answer back. Protobuf types stop here.

use tonic::{Request, Response, Status};
use vdm_proto::player::v1 as pb;
use vdm_proto::player::v1::player_service_server::PlayerServiceServer;

use crate::domain::{
    Amounts, Change, Direction, Item, ItemInput, LedgerEntry, LedgerKind, Outcome, Profile, Revocation, Rotation,
    Standing,
};
use crate::error::PlayerError;
use crate::service::PlayerService;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.player.v1.PlayerService";

/// Implements `vdm.player.v1.PlayerService` over [`PlayerService`].
#[derive(Clone)]
pub struct PlayerGrpc {
    service: PlayerService,
}

impl PlayerGrpc {
    /// Wraps the service for tonic. Compressed requests are accepted;
    /// answers go uncompressed (small messages on a data-centre network,
    /// as the other services).
    pub fn server(service: PlayerService) -> PlayerServiceServer<PlayerGrpc> {
        use tonic::codec::CompressionEncoding;
        PlayerServiceServer::new(PlayerGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

#[tonic::async_trait]
impl pb::player_service_server::PlayerService for PlayerGrpc {
    async fn sign_in_device(
        &self,
        request: Request<pb::SignInDeviceRequest>,
    ) -> Result<Response<pb::SignInDeviceResponse>, Status> {
        let r = request.into_inner();
        let (player_id, created) = self.service.sign_in(&r.device_id, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::SignInDeviceResponse { player_id, created }))
    }

    async fn register_player(
        &self,
        request: Request<pb::RegisterPlayerRequest>,
    ) -> Result<Response<pb::RegisterPlayerResponse>, Status> {
        let r = request.into_inner();
        let created = self
            .service
            .register(r.player_id, &r.device_id, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::RegisterPlayerResponse { created }))
    }

    async fn rotate_session(
        &self,
        request: Request<pb::RotateSessionRequest>,
    ) -> Result<Response<pb::RotateSessionResponse>, Status> {
        let r = request.into_inner();
        let rotation = self
            .service
            .rotate_session(r.player_id, &r.sid, r.generation, r.issued_at_ms, vdm_kit::now_ms())
            .await?;
        let (outcome, generation) = match rotation {
            Rotation::Rotated(generation) => (pb::RotationOutcome::Rotated, generation),
            Rotation::Revoked => (pb::RotationOutcome::Revoked, 0),
            Rotation::Reused => (pb::RotationOutcome::Reused, 0),
            Rotation::NoPlayer => (pb::RotationOutcome::NoPlayer, 0),
        };
        Ok(Response::new(pb::RotateSessionResponse {
            outcome: outcome as i32,
            generation,
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let r = request.into_inner();
        let revoked_at_ms = self
            .service
            .revoke_session(r.player_id, &r.sid, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::RevokeSessionResponse { revoked_at_ms }))
    }

    async fn revoke_player_sessions(
        &self,
        request: Request<pb::RevokePlayerSessionsRequest>,
    ) -> Result<Response<pb::RevokePlayerSessionsResponse>, Status> {
        let r = request.into_inner();
        let revoked_before_ms = self
            .service
            .revoke_player(r.player_id, r.at_ms, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::RevokePlayerSessionsResponse { revoked_before_ms }))
    }

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        let revocations = self.service.revocations_since(request.into_inner().since_ms).await?;
        Ok(Response::new(pb::ListRevocationsResponse {
            revocations: revocations.into_iter().map(pb::Revocation::from).collect(),
        }))
    }

    async fn get_profile(&self, request: Request<pb::GetProfileRequest>) -> Result<Response<pb::Profile>, Status> {
        let profile = self.service.profile(request.into_inner().player_id).await?;
        Ok(Response::new(pb::Profile::from(profile)))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::Profile>, Status> {
        let r = request.into_inner();
        let profile = self
            .service
            .update_profile(r.player_id, r.display_name.as_deref(), vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::Profile::from(profile)))
    }

    async fn put_item(&self, request: Request<pb::PutItemRequest>) -> Result<Response<pb::Item>, Status> {
        let item = request
            .into_inner()
            .item
            .ok_or_else(|| PlayerError::Invalid("item is required".to_owned()))?;
        let item = self.service.put_item(ItemInput::from(item), vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::Item::from(item)))
    }

    async fn get_item(&self, request: Request<pb::GetItemRequest>) -> Result<Response<pb::Item>, Status> {
        let item = self.service.item(request.into_inner().id).await?;
        Ok(Response::new(pb::Item::from(item)))
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Result<Response<pb::ListItemsResponse>, Status> {
        let r = request.into_inner();
        let (items, next) = self.service.items(r.limit, &r.cursor).await?;
        Ok(Response::new(pb::ListItemsResponse {
            items: items.into_iter().map(pb::Item::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn get_inventory(
        &self,
        request: Request<pb::GetInventoryRequest>,
    ) -> Result<Response<pb::Inventory>, Status> {
        let player_id = request.into_inner().player_id;
        let stacks = self.service.inventory(player_id).await?;
        Ok(Response::new(pb::Inventory {
            player_id,
            stacks: stacks
                .iter()
                .map(|(item, quantity)| pb::Stack {
                    item: Some(pb::Item::from(item.clone())),
                    quantity: *quantity,
                })
                .collect(),
        }))
    }

    async fn grant(&self, request: Request<pb::GrantRequest>) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = request.into_inner();
        let change = change(
            r.player_id,
            Direction::Grant,
            r.amounts,
            r.reason,
            r.source_id,
            r.grant_id,
        )?;
        let outcome = self.service.apply(change, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::ChangeResponse::from(outcome)))
    }

    async fn remove(&self, request: Request<pb::RemoveRequest>) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = request.into_inner();
        let change = change(
            r.player_id,
            Direction::Remove,
            r.amounts,
            r.reason,
            r.source_id,
            r.grant_id,
        )?;
        let outcome = self.service.apply(change, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::ChangeResponse::from(outcome)))
    }

    async fn grant_reward(
        &self,
        request: Request<pb::GrantRewardRequest>,
    ) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = request.into_inner();
        if r.grant_id.is_empty() {
            return Err(PlayerError::Invalid("grant_id is required".to_owned()).into());
        }
        let amounts = Amounts::parse_with_standings(
            r.gold,
            r.xp,
            r.item_ids.into_iter().map(|id| (id, 1)),
            r.standings.into_iter().map(|s| (s.faction_id, s.delta)),
        )
        .map_err(PlayerError::from)?;
        let change = Change::parse(
            r.player_id,
            Direction::Grant,
            amounts,
            r.reason,
            r.source_id,
            Some(r.grant_id),
        )
        .map_err(PlayerError::from)?;
        let outcome = self.service.apply(change, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::ChangeResponse::from(outcome)))
    }

    async fn list_ledger(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Result<Response<pb::ListLedgerResponse>, Status> {
        let r = request.into_inner();
        let (entries, next) = self
            .service
            .ledger(r.player_id, r.limit, &r.cursor, r.newest_first)
            .await?;
        Ok(Response::new(pb::ListLedgerResponse {
            entries: entries.into_iter().map(pb::LedgerEntry::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn list_standings(
        &self,
        request: Request<pb::ListStandingsRequest>,
    ) -> Result<Response<pb::ListStandingsResponse>, Status> {
        let standings = self.service.standings(request.into_inner().player_id).await?;
        Ok(Response::new(pb::ListStandingsResponse {
            standings: standings.into_iter().map(pb::Standing::from).collect(),
        }))
    }
}

/// The change an operator's grant or removal asks for.
fn change(
    player_id: i64,
    direction: Direction,
    amounts: Option<pb::Amounts>,
    reason: String,
    source_id: String,
    grant_id: String,
) -> Result<Change, PlayerError> {
    let amounts = amounts.unwrap_or_default();
    let amounts = Amounts::parse(
        amounts.gold,
        amounts.xp,
        amounts.items.into_iter().map(|i| (i.item_id, i.quantity)),
    )?;
    let grant_id = Some(grant_id).filter(|id| !id.is_empty());
    Ok(Change::parse(
        player_id, direction, amounts, reason, source_id, grant_id,
    )?)
}

impl From<Profile> for pb::Profile {
    fn from(profile: Profile) -> pb::Profile {
        pb::Profile {
            player_id: profile.player_id,
            display_name: profile.display_name.unwrap_or_default(),
            xp: profile.xp,
            level: profile.level,
            next_level_xp: profile.next_level_xp,
            gold: profile.gold,
            created_at_ms: profile.created_at_ms,
            updated_at_ms: profile.updated_at_ms,
        }
    }
}

impl From<Outcome> for pb::ChangeResponse {
    fn from(outcome: Outcome) -> pb::ChangeResponse {
        pb::ChangeResponse {
            leveled_up: outcome.leveled_up(),
            previous_level: outcome.previous_level,
            replayed: outcome.replayed,
            profile: Some(pb::Profile::from(outcome.profile)),
        }
    }
}

impl From<pb::Item> for ItemInput {
    fn from(item: pb::Item) -> ItemInput {
        ItemInput {
            id: item.id,
            key: item.key,
            name: item.name,
            kind: item.kind,
            rarity: item.rarity,
            max_stack: item.max_stack,
            tradeable: item.tradeable,
        }
    }
}

impl From<Item> for pb::Item {
    fn from(item: Item) -> pb::Item {
        pb::Item {
            id: item.id,
            key: item.key,
            name: item.name,
            kind: item.kind,
            rarity: item.rarity.as_str().to_owned(),
            max_stack: item.max_stack,
            tradeable: item.tradeable,
            created_at_ms: item.created_at_ms,
            updated_at_ms: item.updated_at_ms,
        }
    }
}

impl From<LedgerEntry> for pb::LedgerEntry {
    fn from(entry: LedgerEntry) -> pb::LedgerEntry {
        let kind = match entry.kind {
            LedgerKind::Gold => pb::LedgerKind::Gold,
            LedgerKind::Xp => pb::LedgerKind::Xp,
            LedgerKind::Item => pb::LedgerKind::Item,
            LedgerKind::Standing => pb::LedgerKind::Standing,
        };
        pb::LedgerEntry {
            id: entry.id,
            player_id: entry.player_id,
            kind: kind as i32,
            item_id: entry.item_id.unwrap_or(0),
            amount: entry.amount,
            balance_after: entry.balance_after,
            reason: entry.reason,
            source_id: entry.source_id,
            grant_id: entry.grant_id.unwrap_or_default(),
            created_at_ms: entry.created_at_ms,
            faction_id: entry.faction_id.unwrap_or(0),
        }
    }
}

impl From<Standing> for pb::Standing {
    fn from(standing: Standing) -> pb::Standing {
        pb::Standing {
            faction_id: standing.faction_id,
            standing: standing.standing,
            updated_at_ms: standing.updated_at_ms,
        }
    }
}

impl From<Revocation> for pb::Revocation {
    fn from(revocation: Revocation) -> pb::Revocation {
        use pb::revocation::Scope;
        match revocation {
            Revocation::Session { player_id, sid, at_ms } => pb::Revocation {
                player_id,
                scope: Some(Scope::Session(pb::RevokedSession { sid, at_ms })),
            },
            Revocation::Player { player_id, before_ms } => pb::Revocation {
                player_id,
                scope: Some(Scope::IssuedBeforeMs(before_ms)),
            },
        }
    }
}
