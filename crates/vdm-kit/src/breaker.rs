//! A circuit breaker for one service address, in front of every gRPC call
//! the channel makes.
//!
//! Closed, calls go through. After [`TRIP_AFTER`] consecutive failures to
//! reach the service (refused, reset, or no answer within the deadline) it
//! opens: calls fail at once with `Unavailable` instead of each waiting for
//! a connect timeout, so a dead or black-holed service cannot pile requests
//! up in its callers. When the cooldown has passed, one call goes through
//! as a probe (the others still fail fast): if it reaches the service the
//! breaker closes, else it opens again for twice the cooldown (up to
//! [`MAX_COOLDOWN`]). A probe whose caller gives up counts as a failure, so
//! the breaker is never stuck waiting for it.
//!
//! `vdm_grpc_client_circuit_open{target}` is 1 while open;
//! `vdm_grpc_client_circuit_rejections_total{target}` counts calls failed
//! fast.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
pub const TRIP_AFTER: u32 = 3;
/// The first cooldown once open.
pub const FIRST_COOLDOWN: Duration = Duration::from_millis(250);
/// The longest cooldown.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(5);

/// See the module docs. Cheap to clone: clones share the state.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    probing: bool,
}

/// What the breaker says about a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Pass,
    /// Go ahead: this call decides whether the breaker closes.
    Probe,
    /// Fail at once; the breaker opens again in this long at the earliest.
    Reject(Duration),
}

/// A call the breaker let through; report how it went with
/// [`Ticket::succeeded`] or [`Ticket::failed`]. Dropped without a report
/// (the caller gave up), it counts as a failure when it was the probe, and
/// as nothing otherwise.
pub struct Ticket {
    breaker: Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A closed breaker for the service at `target` (its metric label).
    pub fn new(target: impl Into<String>) -> Breaker {
        Breaker {
            inner: Arc::new(Inner {
                target: target.into(),
                state: Mutex::new(State {
                    failures: 0,
                    open_until: None,
                    cooldown: FIRST_COOLDOWN,
                    probing: false,
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few numbers updated together: a panic elsewhere
        // cannot leave it half-written.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides about a call starting at `now`.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.state();
        match state.open_until {
            None => Admission::Pass,
            Some(until) if now < until => Admission::Reject(until - now),
            Some(_) if state.probing => Admission::Reject(Duration::ZERO),
            Some(_) => {
                state.probing = true;
                Admission::Probe
            }
        }
    }

    /// Asks to make a call now: a ticket to report on, or `Err` with how
    /// long until the next probe when the call must fail fast.
    pub fn call(&self) -> Result<Ticket, Duration> {
        match self.admit(Instant::now()) {
            Admission::Pass => Ok(Ticket {
                breaker: self.clone(),
                probe: false,
                reported: false,
            }),
            Admission::Probe => Ok(Ticket {
                breaker: self.clone(),
                probe: true,
                reported: false,
            }),
            Admission::Reject(wait) => {
                metrics::counter!("vdm_grpc_client_circuit_rejections_total", "target" => self.inner.target.clone())
                    .increment(1);
                Err(wait)
            }
        }
    }

    /// The service answered.
    pub fn record_success(&self) {
        let mut state = self.state();
        let was_open = state.open_until.is_some();
        *state = State {
            failures: 0,
            open_until: None,
            cooldown: FIRST_COOLDOWN,
            probing: false,
        };
        drop(state);
        if was_open {
            tracing::info!(target = %self.inner.target, "service reachable again: circuit closed");
            metrics::gauge!("vdm_grpc_client_circuit_open", "target" => self.inner.target.clone()).set(0.0);
        }
    }

    /// The service could not be reached, at `now`.
    pub fn record_failure(&self, now: Instant) {
        let mut state = self.state();
        state.failures = state.failures.saturating_add(1);
        let reopen = state.probing || state.open_until.is_some();
        state.probing = false;
        if reopen || state.failures >= TRIP_AFTER {
            let cooldown = state.cooldown;
            state.open_until = Some(now + cooldown);
            state.cooldown = (cooldown * 2).min(MAX_COOLDOWN);
            let failures = state.failures;
            drop(state);
            if !reopen {
                tracing::warn!(
                    target = %self.inner.target,
                    failures,
                    cooldown_ms = cooldown.as_millis() as u64,
                    "service unreachable: circuit open, failing calls fast"
                );
            }
            metrics::gauge!("vdm_grpc_client_circuit_open", "target" => self.inner.target.clone()).set(1.0);
        }
    }

    /// Whether calls fail fast right now.
    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }
}

impl Ticket {
    /// The service answered (whatever the gRPC status).
    pub fn succeeded(mut self) {
        self.reported = true;
        self.breaker.record_success();
    }

    /// The service could not be reached or did not answer in time.
    pub fn failed(mut self) {
        self.reported = true;
        self.breaker.record_failure(Instant::now());
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.record_failure(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_probes_once_and_backs_off() {
        let breaker = Breaker::new("quest:50051");
        let t0 = Instant::now();
        for _ in 0..TRIP_AFTER - 1 {
            assert_eq!(breaker.admit(t0), Admission::Pass);
            breaker.record_failure(t0);
        }
        assert!(!breaker.is_open());
        breaker.record_failure(t0);
        assert!(breaker.is_open());
        assert_eq!(breaker.admit(t0), Admission::Reject(FIRST_COOLDOWN));

        // After the cooldown: one probe, the others still fail fast.
        let t1 = t0 + FIRST_COOLDOWN;
        assert_eq!(breaker.admit(t1), Admission::Probe);
        assert_eq!(breaker.admit(t1), Admission::Reject(Duration::ZERO));
        // The probe fails: open again, for twice as long.
        breaker.record_failure(t1);
        assert_eq!(breaker.admit(t1), Admission::Reject(FIRST_COOLDOWN * 2));
        let t2 = t1 + FIRST_COOLDOWN * 2;
        assert_eq!(breaker.admit(t2), Admission::Probe);
        breaker.record_success();
        assert!(!breaker.is_open());
        assert_eq!(breaker.admit(t2), Admission::Pass);
    }

    #[test]
    fn the_cooldown_is_capped_and_a_dropped_probe_counts_as_a_failure() {
        let breaker = Breaker::new("x");
        let mut now = Instant::now();
        for _ in 0..20 {
            breaker.record_failure(now);
            now += MAX_COOLDOWN;
        }
        assert_eq!(breaker.admit(now - MAX_COOLDOWN), Admission::Reject(MAX_COOLDOWN));
        // A probe whose caller gives up leaves the breaker open, not stuck.
        assert_eq!(breaker.admit(now), Admission::Probe);
        drop(Ticket {
            breaker: breaker.clone(),
            probe: true,
            reported: false,
        });
        assert!(breaker.is_open());
        assert!(breaker.call().is_err(), "reopened after the abandoned probe");
        // Successes while closed keep it closed.
        let fresh = Breaker::new("y");
        fresh.call().unwrap().succeeded();
        fresh.call().unwrap().failed();
        assert!(!fresh.is_open());
    }
}
