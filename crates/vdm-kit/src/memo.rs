//! A replica's short memory of what it read from elsewhere (another
//! service, the shared cache), in front of the read: each entry is reused
//! for a fixed time, a change this replica learns of (its own write, a
//! change event) drops it at once, and a read that raced such a drop is not
//! kept, so what the drop was about cannot come back for the whole TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What a read that missed must present to [`Memo::keep`]: the memo's
/// drops up to the start of that read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// Values by key, each reused for up to a TTL; at most a bound of them
/// (past it the memo starts over: an entry only saves a read).
pub struct Memo<K, V> {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Bumped by every drop: a read that started before a drop may hold
    /// what the drop was about.
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    /// An empty memo whose entries live `ttl`, holding at most
    /// `max_entries`.
    pub fn new(ttl: Duration, max_entries: usize) -> Memo<K, V> {
        Memo {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The value kept for `key` when it is younger than the TTL; else the
    /// ticket the read that replaces it must present to [`Memo::keep`].
    pub fn get(&self, key: &K) -> Result<V, Ticket> {
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((read_at, value)) if read_at.elapsed() < self.ttl => Ok(value.clone()),
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// Keeps `value` for `key`, read under `ticket`, unless a drop came
    /// since.
    pub fn keep(&self, key: K, value: V, ticket: Ticket) {
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= self.max_entries {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value));
    }

    /// Drops `key`; reads in flight keep nothing.
    pub fn forget(&self, key: &K) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(key);
    }

    /// Drops every entry; reads in flight keep nothing.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_read_that_raced_a_drop_is_not_kept_and_entries_expire() {
        let memo: Memo<i64, &str> = Memo::new(Duration::from_millis(50), 10);
        let ticket = memo.get(&1).unwrap_err();
        memo.keep(1, "old", ticket);
        assert_eq!(memo.get(&1), Ok("old"));

        // A read starts, the value changes (drop), the read ends: not kept.
        let ticket = memo.get(&2).unwrap_err();
        memo.forget(&2);
        memo.keep(2, "stale", ticket);
        assert!(memo.get(&2).is_err());

        memo.forget_all();
        assert!(memo.get(&1).is_err());
        let ticket = memo.get(&1).unwrap_err();
        memo.keep(1, "new", ticket);
        std::thread::sleep(Duration::from_millis(60));
        assert!(memo.get(&1).is_err(), "expired after the TTL");
    }
}
