//! Revoked sessions, known to every replica without a database call per
//! request.
//!
//! Session tokens are checked at the edge from their signature alone, so a
//! revocation must reach every gateway replica: the replica that revokes
//! has the player service record it, applies it at once, and publishes it
//! on the event bus (`vdm.events.v1.SessionRevoked`; no socket gets it);
//! every replica applies what it hears. A replica that starts reads the
//! revocations recent enough to still matter (younger than the session
//! token lifetime) from the player service. Open sockets of a revoked
//! session are told through [`Revocations::watch`] and close.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use vdm_kit::bus::{Event, EventBody, EventBus};
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::session_revoked::Scope;
use vdm_proto::events::v1::{OneSession, SessionRevoked};
use vdm_proto::player::v1 as player_pb;

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Revocation {
    /// One session family (a sign-out, or a reused refresh token).
    Session {
        /// Its player.
        player_id: i64,
        /// The family id.
        sid: String,
        /// When it was revoked (Unix ms).
        at_ms: i64,
    },
    /// Every session of a player issued until `before_ms`.
    Player {
        /// The player.
        player_id: i64,
        /// Sessions issued until then (Unix ms) are revoked.
        before_ms: i64,
    },
}

/// What this replica knows is revoked.
pub struct Revocations {
    /// Quick answer for the common case (nothing revoked at all).
    any: AtomicBool,
    state: RwLock<State>,
    /// Bumped on every revocation; sockets wait on it.
    changed: watch::Sender<u64>,
    /// How long a revocation matters: the session token lifetime.
    keep: Duration,
}

#[derive(Default)]
struct State {
    /// Family id → when it was revoked (Unix ms).
    sessions: HashMap<String, i64>,
    /// Player → sessions issued until then are revoked (Unix ms).
    players: HashMap<i64, i64>,
}

impl Revocations {
    /// Nothing revoked; entries are forgotten `keep` after they were made
    /// (no session token they concern is still valid by then).
    pub fn new(keep: Duration) -> Revocations {
        Revocations {
            any: AtomicBool::new(false),
            state: RwLock::new(State::default()),
            changed: watch::channel(0).0,
            keep,
        }
    }

    /// Whether a session of `player_id`, family `sid`, issued at
    /// `issued_ms`, is revoked.
    pub fn is_revoked(&self, player_id: i64, sid: &str, issued_ms: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.sessions.contains_key(sid) || state.players.get(&player_id).is_some_and(|before| issued_ms <= *before)
    }

    /// Records a revocation and wakes the sockets.
    pub fn apply(&self, revocation: &Revocation) {
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            match revocation {
                Revocation::Session { sid, at_ms, .. } => {
                    state.sessions.insert(sid.clone(), *at_ms);
                }
                Revocation::Player { player_id, before_ms } => {
                    let entry = state.players.entry(*player_id).or_insert(*before_ms);
                    *entry = (*entry).max(*before_ms);
                }
            }
            self.any.store(true, Ordering::Release);
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever something is revoked.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Forgets revocations older than the session token lifetime.
    fn sweep(&self) {
        let cutoff = vdm_kit::now_ms() - self.keep.as_millis() as i64;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.sessions.retain(|_, at| *at > cutoff);
        state.players.retain(|_, before| *before > cutoff);
        let any = !(state.sessions.is_empty() && state.players.is_empty());
        self.any.store(any, Ordering::Release);
        metrics::gauge!("vdm_sessions_revoked").set((state.sessions.len() + state.players.len()) as f64);
    }

    /// The oldest revocation time (Unix ms) that still matters.
    pub fn horizon_ms(&self) -> i64 {
        vdm_kit::now_ms() - self.keep.as_millis() as i64
    }

    /// Applies the revocations other replicas publish, and forgets old
    /// ones, until `shutdown`.
    pub fn spawn_listener(self: std::sync::Arc<Self>, bus: &EventBus, shutdown: CancellationToken) {
        let mut deliveries = bus.subscribe().deliveries;
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(60));
            loop {
                let delivery = tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = sweep.tick() => {
                        self.sweep();
                        continue;
                    }
                    received = deliveries.recv() => received,
                };
                match delivery {
                    Ok(vdm_kit::bus::Delivery::Event(_, event)) => {
                        if let Some(EventBody::SessionRevoked(revoked)) = &event.body {
                            match Revocation::from_event(revoked) {
                                Some(revocation) => self.apply(&revocation),
                                None => tracing::error!("revocation event without a scope"),
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        // Revocations may be among the missed events: the
                        // database has them all.
                        tracing::error!(missed, "revocation listener fell behind the event bus");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// The bus event that carries a revocation to every replica.
pub fn event(revocation: &Revocation) -> Event {
    let (player_id, scope) = match revocation {
        Revocation::Session { player_id, sid, at_ms } => (
            *player_id,
            Scope::Session(OneSession {
                sid: sid.clone(),
                at_ms: *at_ms,
            }),
        ),
        Revocation::Player { player_id, before_ms } => (*player_id, Scope::IssuedBeforeMs(*before_ms)),
    };
    Event {
        // Routed to no socket: only gateways listen.
        player_id: None,
        region_ids: Vec::new(),
        body: Some(EventBody::SessionRevoked(SessionRevoked {
            player_id,
            scope: Some(scope),
        })),
    }
}

/// A revocation the player service lists (`Err` without a scope).
impl TryFrom<player_pb::Revocation> for Revocation {
    type Error = ();

    fn try_from(revocation: player_pb::Revocation) -> Result<Revocation, ()> {
        use player_pb::revocation::Scope;
        Ok(match revocation.scope.ok_or(())? {
            Scope::Session(session) => Revocation::Session {
                player_id: revocation.player_id,
                sid: session.sid,
                at_ms: session.at_ms,
            },
            Scope::IssuedBeforeMs(before_ms) => Revocation::Player {
                player_id: revocation.player_id,
                before_ms,
            },
        })
    }
}

impl Revocation {
    /// The revocation a bus event carries (`None` without a scope).
    fn from_event(revoked: &SessionRevoked) -> Option<Revocation> {
        Some(match revoked.scope.as_ref()? {
            Scope::Session(session) => Revocation::Session {
                player_id: revoked.player_id,
                sid: session.sid.clone(),
                at_ms: session.at_ms,
            },
            Scope::IssuedBeforeMs(before_ms) => Revocation::Player {
                player_id: revoked.player_id,
                before_ms: *before_ms,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_players_are_revoked() {
        let revocations = Revocations::new(Duration::from_secs(60));
        let mut watch = revocations.watch();
        assert!(!revocations.is_revoked(1, "a", 10));
        revocations.apply(&Revocation::Session {
            player_id: 1,
            sid: "a".into(),
            at_ms: vdm_kit::now_ms(),
        });
        assert!(watch.has_changed().unwrap_or(false));
        watch.mark_unchanged();
        assert!(revocations.is_revoked(1, "a", 10));
        assert!(!revocations.is_revoked(1, "b", 10));
        revocations.apply(&Revocation::Player {
            player_id: 2,
            before_ms: 1_000,
        });
        assert!(revocations.is_revoked(2, "c", 1_000));
        assert!(!revocations.is_revoked(2, "c", 1_001), "issued after the cut-off");
        revocations.sweep();
        assert!(revocations.is_revoked(1, "a", 10), "recent: kept");
        assert!(
            !revocations.is_revoked(2, "c", 1_000),
            "older than the token lifetime: forgotten"
        );
    }
}
