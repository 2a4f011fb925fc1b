//! Session tokens this replica has already verified.
//!
//! A client sends the same session token with every request until it
//! refreshes. Checking it again each time (two base64 decodes, a JSON parse
//! and an HMAC) was about a tenth of the CPU of a cached read, so the claims
//! of a token that passed are remembered, keyed by the whole token, until
//! its `exp`. What a remembered token still has to pass on every request is
//! what can change after it was issued: its expiry and the replica's
//! revocations (checked by the caller). `iat` and `nbf` only ever hold
//! more surely as time goes on.
//!
//! Bounded: a shard that is full first forgets its expired tokens, and
//! forgets everything when none has expired; a forgotten token is simply
//! verified again. Only tokens that verified are ever kept, so a flood of
//! forged tokens cannot push honest ones out.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// The claims of a verified session token that a request needs.
#[derive(Debug)]
pub struct Verified {
    /// The player.
    pub player_id: i64,
    /// The session family.
    pub sid: String,
    /// When the token was issued (Unix ms).
    pub issued_ms: i64,
    /// When it expires (Unix s).
    pub exp: u64,
}

/// One shard: token → its claims.
type Shard = Mutex<HashMap<Box<str>, Arc<Verified>>>;

/// See the module docs.
pub struct TokenMemo {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

const SHARDS: usize = 16;

impl TokenMemo {
    /// A memo of at most about `capacity` tokens (0 keeps none).
    pub fn new(capacity: usize) -> TokenMemo {
        TokenMemo {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
        }
    }

    /// The remembered claims of `token`, if it verified before and has not
    /// expired by `now` (Unix s, with `leeway` as the verification allows).
    pub fn get(&self, token: &str, now: u64, leeway: u64) -> Option<Arc<Verified>> {
        if self.per_shard == 0 {
            return None;
        }
        let shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        let verified = shard.get(token)?;
        (verified.exp + leeway > now).then(|| verified.clone())
    }

    /// Remembers a token that verified.
    pub fn insert(&self, token: &str, verified: Arc<Verified>, now: u64) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard {
            shard.retain(|_, v| v.exp > now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(token.into(), verified);
    }

    fn shard(&self, token: &str) -> &Shard {
        let index = (self.hasher.hash_one(token) % SHARDS as u64) as usize;
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn verified(player_id: i64, exp: u64) -> Arc<Verified> {
        Arc::new(Verified {
            player_id,
            sid: "s".to_owned(),
            issued_ms: 0,
            exp,
        })
    }

    #[test]
    fn a_remembered_token_expires_with_its_exp() {
        let memo = TokenMemo::new(64);
        memo.insert("a.b.c", verified(7, 100), 50);
        assert_eq!(memo.get("a.b.c", 99, 0).unwrap().player_id, 7);
        assert!(memo.get("a.b.c", 100, 0).is_none(), "expired at exp");
        assert!(memo.get("a.b.c", 104, 5).is_some(), "within the leeway");
        assert!(memo.get("a.b.x", 50, 0).is_none(), "another token");
    }

    #[test]
    fn a_full_memo_forgets_rather_than_grows() {
        let memo = TokenMemo::new(SHARDS * 4);
        for i in 0..10_000 {
            memo.insert(&format!("token-{i}"), verified(i, 1_000), 10);
        }
        let kept: usize = memo.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= SHARDS * 4, "kept {kept}");
        // Expired entries go first: a full shard of expired tokens makes room.
        let memo = TokenMemo::new(SHARDS);
        for i in 0..SHARDS * 8 {
            memo.insert(&format!("old-{i}"), verified(1, 5), 1);
        }
        memo.insert("fresh", verified(2, 1_000), 10);
        assert_eq!(memo.get("fresh", 10, 0).unwrap().player_id, 2);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let memo = TokenMemo::new(0);
        memo.insert("t", verified(1, 1_000), 0);
        assert!(memo.get("t", 0, 0).is_none());
    }
}
