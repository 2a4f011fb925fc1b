//! Rate limits keyed on who is calling, answering 429 with `Retry-After`
//! when a caller's quota is spent.
//!
//! Reads and writes are keyed on the verified caller: the player of a valid
//! session token, or the named operator credential. The token is verified
//! here (and the verdict handed to the handlers' extractors, so it is not
//! verified twice), which is what makes the key honest: the same token
//! written with other spacing or casing is still the same player, and a
//! made-up token is nobody and falls back to its client address. Sign-ins
//! and refreshes (`/v1/auth/*`) are keyed on the client address. Requests
//! sent over a socket carry the socket's peer address, so each socket's
//! player and address have their own quotas like any HTTP client.
//!
//! The client address is the peer, or, when the peer is a trusted proxy
//! ([`RateLimits::trusted_proxies`]), the right-most `X-Forwarded-For` hop
//! that is not itself a trusted proxy: hops to its left were written by the
//! client and prove nothing.
//!
//! Besides its rate, each player (and each client address without a valid
//! token) may have at most [`RateLimits::in_flight`] requests running at
//! once: slow requests cannot pile up into a share of the services' database
//! pools and queues that other players then wait behind. Operators are
//! trusted and not capped.
//!
//! The quotas are [`governor`]'s GCRA limiters, one per route class; idle
//! keys are dropped by a background task ([`spawn_sweeper`]), never on the
//! request path. Limits are per gateway replica.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use vdm_kit::ErrorCode;
use vdm_kit::shutdown::CancellationToken;

use crate::auth::{Caller, TokenKeys};
use crate::error::GatewayError;

/// How often idle keys are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Shards of the in-flight table (its lock is held for an increment).
const IN_FLIGHT_SHARDS: usize = 16;

/// One class's rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst.max(1.0).min(f64::from(u32::MAX)) as u32).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(1.0 / self.per_second.max(1e-6));
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// A trusted proxy network: an address and a prefix length (`10.0.0.0/8`,
/// or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(IpAddr::V6(v4.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(raw: &str) -> Result<ProxyNet, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} has a bad prefix length (0 to {max})"))?,
        };
        Ok(ProxyNet { addr, prefix })
    }
}

/// The limits; `None` in the config turns limiting off (benchmarks).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Device sign-in and refresh, per client address.
    pub auth: Rate,
    /// Writes, per caller.
    pub write: Rate,
    /// Reads, per caller.
    pub read: Rate,
    /// Requests one player (or client address) may have running at once.
    pub in_flight: u32,
    /// Proxies whose `X-Forwarded-For` is believed (`VDM_TRUSTED_PROXIES`);
    /// empty: the peer address is the client's.
    pub trusted_proxies: Vec<ProxyNet>,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            auth: Rate {
                per_second: 5.0,
                burst: 20.0,
            },
            write: Rate {
                per_second: 20.0,
                burst: 40.0,
            },
            read: Rate {
                per_second: 100.0,
                burst: 200.0,
            },
            in_flight: 16,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Who a quota belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A verified player.
    Player(i64),
    /// A named operator credential.
    Operator(Arc<str>),
    /// A client address (sign-ins, and callers without a valid token).
    Addr(IpAddr),
}

#[derive(Clone, Copy)]
enum Class {
    Auth,
    Write,
    Read,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Write => "write",
            Class::Read => "read",
        }
    }
}

/// The quotas of every class.
pub struct Limiter {
    limits: RateLimits,
    auth: DefaultKeyedRateLimiter<Key>,
    write: DefaultKeyedRateLimiter<Key>,
    read: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
    running: Arc<Running>,
}

/// Requests running per key, in shards.
struct Running {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Key, u32>>>,
}

/// One running request; its count is given back when dropped (answered,
/// or abandoned by the client).
pub struct Slot {
    running: Arc<Running>,
    key: Key,
}

impl Running {
    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, u32>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % IN_FLIGHT_SHARDS]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut shard = self.running.shard(&self.key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = shard.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

impl Limiter {
    /// Builds the quotas, all full.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter {
            auth: RateLimiter::keyed(limits.auth.quota()),
            write: RateLimiter::keyed(limits.write.quota()),
            read: RateLimiter::keyed(limits.read.quota()),
            clock: DefaultClock::default(),
            running: Arc::new(Running {
                hasher: RandomState::new(),
                shards: (0..IN_FLIGHT_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            }),
            limits,
        }
    }

    /// Counts a request of `key` as running, unless it has
    /// [`RateLimits::in_flight`] running already.
    fn enter(&self, key: &Key) -> Option<Slot> {
        let mut shard = self.running.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let count = shard.entry(key.clone()).or_insert(0);
        if *count >= self.limits.in_flight {
            return None;
        }
        *count += 1;
        Some(Slot {
            running: self.running.clone(),
            key: key.clone(),
        })
    }

    /// Takes one request from `key`'s quota of `class`; `Err` holds the
    /// whole seconds until the next one is allowed.
    fn take(&self, class: Class, key: &Key) -> Result<(), u64> {
        let limiter = match class {
            Class::Auth => &self.auth,
            Class::Write => &self.write,
            Class::Read => &self.read,
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }

    /// Drops the keys whose quotas are full again (they hold nothing).
    fn sweep(&self) {
        for limiter in [&self.auth, &self.write, &self.read] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        metrics::gauge!("vdm_rate_limit_keys").set((self.auth.len() + self.write.len() + self.read.len()) as f64);
    }
}

/// Drops idle keys every [`SWEEP_EVERY`] until `shutdown`.
pub fn spawn_sweeper(limiter: Arc<Limiter>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => limiter.sweep(),
            }
        }
    });
}

/// Whether requests to `path` pass unlimited: the probes and the scraper
/// must get through however busy the gateway is.
pub fn is_exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// What the middleware needs: the quotas (`None`: limiting is off) and the
/// keys that verify tokens.
#[derive(Clone)]
pub struct LimitState {
    /// The quotas.
    pub limiter: Option<Arc<Limiter>>,
    /// Verifies bearer tokens, to key on the caller.
    pub tokens: Arc<TokenKeys>,
}

/// The quotas' verdict on a request, before it runs: `Ok` with the
/// request's in-flight slot (held until it is answered; `None` when
/// limiting is off, for exempt routes and for operators), or the refusal
/// to answer instead. Applied by [`crate::middleware::rules::EdgeRules`].
pub fn admit(state: &LimitState, request: &mut Request) -> Result<Option<Slot>, Refused> {
    let Some(limiter) = &state.limiter else {
        return Ok(None);
    };
    let path = request.uri().path();
    if is_exempt(path) {
        return Ok(None);
    }
    let class = if path.starts_with("/v1/auth/") {
        Class::Auth
    } else if matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    ) {
        Class::Write
    } else {
        Class::Read
    };
    let caller = match class {
        Class::Auth => None,
        _ => crate::auth::verified_caller(&state.tokens, request),
    };
    let key = match caller {
        Some(Caller::Player(id)) => Key::Player(id),
        Some(Caller::Operator(name)) => Key::Operator(name),
        None => Key::Addr(client_ip(request, &limiter.limits.trusted_proxies)),
    };
    if let Err(retry_after) = limiter.take(class, &key) {
        let class_name = class.name();
        return Err(Refused {
            class: class_name,
            message: format!("too many {class_name} requests; retry in {retry_after} s"),
            retry_after,
        });
    }
    match key {
        Key::Operator(_) => Ok(None),
        _ => match limiter.enter(&key) {
            Some(slot) => Ok(Some(slot)),
            None => {
                let message = format!(
                    "too many requests in flight (at most {} at once); retry when one is answered",
                    limiter.limits.in_flight
                );
                Err(Refused {
                    class: "in_flight",
                    message,
                    retry_after: 1,
                })
            }
        },
    }
}

/// A request the quotas refuse: a 429 with `Retry-After`.
#[derive(Debug)]
pub struct Refused {
    class: &'static str,
    message: String,
    retry_after: u64,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        metrics::counter!("vdm_rate_limited_total", "class" => self.class).increment(1);
        let mut response = GatewayError::api(ErrorCode::ResourceExhausted, self.message).into_response();
        if let Ok(value) = HeaderValue::from_str(&self.retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The client's address: the peer's, or behind trusted proxies the
/// right-most `X-Forwarded-For` hop that is not a trusted proxy.
pub fn client_ip(request: &Request, trusted: &[ProxyNet]) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    client_ip_of(peer, forwarded, trusted)
}

fn client_ip_of<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[ProxyNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A hop we cannot read: the chain of trust ends at the last
            // trusted one.
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_quota_allows_its_burst_then_refuses() {
        let limiter = Limiter::new(RateLimits {
            read: Rate {
                per_second: 1.0,
                burst: 3.0,
            },
            ..RateLimits::default()
        });
        for _ in 0..3 {
            assert!(limiter.take(Class::Read, &Key::Player(7)).is_ok());
        }
        assert_eq!(limiter.take(Class::Read, &Key::Player(7)), Err(1));
        assert!(
            limiter.take(Class::Read, &Key::Player(8)).is_ok(),
            "another caller has its own quota"
        );
        assert!(
            limiter.take(Class::Write, &Key::Player(7)).is_ok(),
            "each class its own quota"
        );
    }

    #[test]
    fn running_requests_are_capped_per_key_and_given_back() {
        let limiter = Limiter::new(RateLimits {
            in_flight: 2,
            ..RateLimits::default()
        });
        let (a, b) = (Key::Player(1), Key::Player(2));
        let first = limiter.enter(&a).unwrap();
        let _second = limiter.enter(&a).unwrap();
        assert!(limiter.enter(&a).is_none(), "a third is refused");
        assert!(limiter.enter(&b).is_some(), "another player is not");
        drop(first);
        assert!(limiter.enter(&a).is_some(), "an answered request frees its slot");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted: Vec<ProxyNet> = ["10.0.0.0/8", "192.168.1.7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not behind a trusted proxy: the header is the client's own words.
        assert_eq!(
            client_ip_of(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        // Behind two trusted proxies: the hop the first proxy saw.
        assert_eq!(
            client_ip_of(
                ip("10.1.2.3"),
                ["6.6.6.6, 198.51.100.4", "192.168.1.7"].into_iter(),
                &trusted
            ),
            ip("198.51.100.4")
        );
        // A spoofed left-most hop changes nothing.
        assert_eq!(
            client_ip_of(ip("10.1.2.3"), ["1.1.1.1, 198.51.100.4"].into_iter(), &trusted),
            ip("198.51.100.4")
        );
        // Garbage ends the chain at the last trusted hop.
        assert_eq!(
            client_ip_of(ip("10.1.2.3"), ["junk"].into_iter(), &trusted),
            ip("10.1.2.3")
        );
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("::1".parse::<ProxyNet>().unwrap().contains(ip("::1")));
    }
}
