//! Player accounts, as the gateway reaches them: the player service keeps
//! the players and their session families; this is its client for sign-in,
//! refresh, sign-out and revocation, with the one memo that keeps repeated
//! device sign-ins off the network.
//!
//! A device's player never changes once created, so a replica remembers
//! device → player after the first sign-in and answers the next ones
//! without a call. Nothing else is remembered: refresh generations and
//! revocations are the player service's, and a replica learns revocations
//! from the event bus ([`crate::auth::sessions`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::Code;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::player::v1 as pb;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;

use crate::auth::sessions::{Revocation, Revocations};
use crate::error::{GatewayError, GatewayResult};

/// How many device → player pairs a replica remembers.
const DEVICE_MEMO_CAPACITY: u64 = 200_000;

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one: this is the next generation.
    Rotated(i64),
    /// The family (or every session of the player) was revoked.
    Revoked,
    /// The token was valid once but has been used already: the family is
    /// revoked now.
    Reused,
    /// The player does not exist.
    NoPlayer,
}

/// The player service's accounts (cheap to clone).
#[derive(Clone)]
pub struct Accounts {
    client: PlayerServiceClient<GrpcChannel>,
    by_device: moka::future::Cache<String, i64>,
    /// Set once the revocations that still matter have been read.
    revocations_loaded: Arc<AtomicBool>,
}

impl Accounts {
    /// Accounts behind this player service client.
    pub fn new(client: PlayerServiceClient<GrpcChannel>) -> Accounts {
        Accounts {
            client,
            by_device: moka::future::Cache::builder()
                .max_capacity(DEVICE_MEMO_CAPACITY)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            revocations_loaded: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Returns the player of a device, creating it on first use, and
    /// whether it was created now.
    pub async fn sign_in(&self, device_id: &str) -> GatewayResult<(i64, bool)> {
        if let Some(id) = self.by_device.get(device_id).await {
            return Ok((id, false));
        }
        let answer = self
            .client
            .clone()
            .sign_in_device(pb::SignInDeviceRequest {
                device_id: device_id.to_owned(),
            })
            .await?
            .into_inner();
        self.by_device.insert(device_id.to_owned(), answer.player_id).await;
        Ok((answer.player_id, answer.created))
    }

    /// Moves a session family from refresh generation `generation` (the
    /// presented token's) to the next, if that token is the current one.
    pub async fn rotate(&self, player_id: i64, sid: &str, generation: i64, issued_ms: i64) -> GatewayResult<Rotation> {
        let answer = self
            .client
            .clone()
            .rotate_session(pb::RotateSessionRequest {
                player_id,
                sid: sid.to_owned(),
                generation,
                issued_at_ms: issued_ms,
            })
            .await?
            .into_inner();
        match answer.outcome() {
            pb::RotationOutcome::Rotated => Ok(Rotation::Rotated(answer.generation)),
            pb::RotationOutcome::Revoked => Ok(Rotation::Revoked),
            pb::RotationOutcome::Reused => Ok(Rotation::Reused),
            pb::RotationOutcome::NoPlayer => Ok(Rotation::NoPlayer),
            pb::RotationOutcome::Unspecified => Err(GatewayError::Internal(
                "the player service answered a refresh without an outcome".to_owned(),
            )),
        }
    }

    /// Revokes one session family (sign out); returns when it was revoked.
    pub async fn revoke_session(&self, player_id: i64, sid: &str) -> GatewayResult<i64> {
        let answer = self
            .client
            .clone()
            .revoke_session(pb::RevokeSessionRequest {
                player_id,
                sid: sid.to_owned(),
            })
            .await?
            .into_inner();
        Ok(answer.revoked_at_ms)
    }

    /// Revokes every session of a player issued until now; returns the
    /// cut-off, or `None` when there is no such player.
    pub async fn revoke_player(&self, player_id: i64) -> GatewayResult<Option<i64>> {
        let answer = self
            .client
            .clone()
            .revoke_player_sessions(pb::RevokePlayerSessionsRequest { player_id, at_ms: 0 })
            .await;
        match answer {
            Ok(answer) => Ok(Some(answer.into_inner().revoked_before_ms)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// Whether the revocations that still matter have been read (until
    /// then the replica is not ready: it could accept a revoked token).
    pub fn revocations_loaded(&self) -> bool {
        self.revocations_loaded.load(Ordering::Acquire)
    }

    /// Reads the revocations younger than a session token's lifetime into
    /// `revocations`, retrying until the player service answers (it may
    /// start after the gateway); later ones arrive on the event bus.
    pub fn spawn_revocation_loader(&self, revocations: Arc<Revocations>, shutdown: CancellationToken) {
        let accounts = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match accounts.revocations_since(revocations.horizon_ms()).await {
                    Ok(loaded) => {
                        let count = loaded.len();
                        for revocation in &loaded {
                            revocations.apply(revocation);
                        }
                        accounts.revocations_loaded.store(true, Ordering::Release);
                        tracing::info!(count, "session revocations loaded");
                        return;
                    }
                    Err(err) => {
                        let retryable = err.code().is_retryable();
                        tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, retryable,
                            "session revocations not loaded yet");
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn revocations_since(&self, since_ms: i64) -> GatewayResult<Vec<Revocation>> {
        let answer = self
            .client
            .clone()
            .list_revocations(pb::ListRevocationsRequest { since_ms })
            .await?
            .into_inner();
        answer
            .revocations
            .into_iter()
            .map(|revocation| {
                Revocation::try_from(revocation).map_err(|()| {
                    GatewayError::Internal("the player service sent a revocation without a scope".to_owned())
                })
            })
            .collect()
    }
}
