//! A replica's short memory of what it read from elsewhere (another
//! service, the shared cache), in front of the read: each entry is reused
//! for a fixed time, a change this replica learns of (its own write, a
//! change event) drops it at once, and a read that raced such a drop is not
//! kept, so what the drop was about cannot come back for the whole TTL.
//! A drop of one key spoils only the reads of that key in flight, so a
//! memo whose keys change often (a busy player's quests) still keeps the
//! others' reads. A change this replica makes itself can be applied to the
//! kept value instead ([`Memo::amend`]), so its next read is still kept.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::bus::{Event, Heard, Subscription};
use crate::shutdown::CancellationToken;

/// What a read that missed must present to [`Memo::keep`]: the memo's
/// drops up to the start of that read, and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    drops: u64,
    at: Instant,
}

/// Where a value [`Memo::get_or_load`] returned came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Kept by the memo.
    Kept,
    /// Loaded just now.
    Loaded,
}

impl Source {
    /// `kept` or `loaded`, as a metric label names them.
    pub fn label(self, kept: &'static str, loaded: &'static str) -> &'static str {
        match self {
            Source::Kept => kept,
            Source::Loaded => loaded,
        }
    }
}

/// What an event that [`Memo::follow`] hears drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropping<K> {
    /// Nothing: the event changes nothing kept here.
    Nothing,
    /// One key's entry.
    Key(K),
    /// Every entry (a change that may touch any of them).
    Everything,
}

impl<K> From<Option<K>> for Dropping<K> {
    fn from(key: Option<K>) -> Dropping<K> {
        key.map_or(Dropping::Nothing, Dropping::Key)
    }
}

/// Keys dropped one by one that are remembered before the memo looks for
/// ones older than its TTL to forget.
const DROPS_REMEMBERED: usize = 1024;
/// Keys dropped within one TTL that are tracked one by one at most; past
/// it the reads in flight are spoiled as by a drop of everything.
const DROPS_TRACKED: usize = 65_536;

/// Values by key, each reused for up to a TTL; at most a bound of them
/// (past it the memo starts over: an entry only saves a read).
pub struct Memo<K, V> {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Counts drops; a read notes the count at its start.
    drops: u64,
    /// The count at the last drop of everything.
    all_dropped_at: u64,
    /// Keys dropped one by one, with the count at their drop and when. A
    /// read older than the TTL is never kept, so a drop older than the TTL
    /// can no longer spoil a read and is forgotten.
    dropped: HashMap<K, (u64, Instant)>,
    /// How many dropped keys trigger the next look for old ones.
    prune_at: usize,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    /// An empty memo whose entries live `ttl`, holding at most
    /// `max_entries`.
    pub fn new(ttl: Duration, max_entries: usize) -> Memo<K, V> {
        Memo {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                drops: 0,
                all_dropped_at: 0,
                dropped: HashMap::new(),
                prune_at: DROPS_REMEMBERED,
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
            _ => Err(Ticket {
                drops: inner.drops,
                at: Instant::now(),
            }),
        }
    }

    /// The value kept for `key`, else `load`'s, which is kept unless `key`
    /// was dropped while it loaded; with where it came from.
    pub async fn get_or_load<E>(&self, key: K, load: impl Future<Output = Result<V, E>>) -> Result<(V, Source), E> {
        let ticket = match self.get(&key) {
            Ok(value) => return Ok((value, Source::Kept)),
            Err(ticket) => ticket,
        };
        let value = load.await?;
        self.keep(key, value.clone(), ticket);
        Ok((value, Source::Loaded))
    }

    /// Keeps `value` for `key`, read under `ticket`, unless `key` (or
    /// everything) was dropped since, or the read took longer than the TTL.
    pub fn keep(&self, key: K, value: V, ticket: Ticket) {
        if ticket.at.elapsed() >= self.ttl {
            return;
        }
        let mut inner = self.lock();
        if inner.all_dropped_at > ticket.drops {
            return;
        }
        if inner.dropped.get(&key).is_some_and(|(at, _)| *at > ticket.drops) {
            return;
        }
        if inner.entries.len() >= self.max_entries {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value));
    }

    /// Drops `key`; its reads in flight keep nothing.
    pub fn forget(&self, key: &K) {
        let mut inner = self.lock();
        inner.entries.remove(key);
        self.note_drop(&mut inner, key);
    }

    /// A ticket for a change this replica is about to make ([`Memo::amend`]).
    pub fn ticket(&self) -> Ticket {
        Ticket {
            drops: self.lock().drops,
            at: Instant::now(),
        }
    }

    /// Applies this replica's own change, begun under `ticket`, to the
    /// value kept for `key` instead of dropping it: `change` gets the kept
    /// value (its age stays as is, so the TTL still bounds what another
    /// replica changed). When `key` was dropped since the ticket (another
    /// writer's change may have come in between) the entry is dropped
    /// instead. Either way the key's reads in flight keep nothing: they may
    /// have read before the change.
    pub fn amend(&self, key: &K, ticket: Ticket, change: impl FnOnce(&mut V)) {
        let mut inner = self.lock();
        let dropped_since =
            inner.all_dropped_at > ticket.drops || inner.dropped.get(key).is_some_and(|(at, _)| *at > ticket.drops);
        let fresh = inner
            .entries
            .get(key)
            .is_some_and(|(read_at, _)| read_at.elapsed() < self.ttl);
        match inner.entries.get_mut(key) {
            Some((_, value)) if fresh && !dropped_since => change(value),
            _ => {
                inner.entries.remove(key);
            }
        }
        self.note_drop(&mut inner, key);
    }

    /// Counts a drop of `key`, for the reads in flight to check against.
    fn note_drop(&self, inner: &mut Inner<K, V>, key: &K) {
        inner.drops += 1;
        let drops = inner.drops;
        inner.dropped.insert(key.clone(), (drops, Instant::now()));
        if inner.dropped.len() >= inner.prune_at {
            let ttl = self.ttl;
            inner.dropped.retain(|_, (_, at)| at.elapsed() < ttl);
            if inner.dropped.len() >= DROPS_TRACKED {
                // Too many recent drops to track one by one: as a drop of
                // everything, for the reads in flight.
                inner.all_dropped_at = drops;
                inner.dropped.clear();
            }
            inner.prune_at = (inner.dropped.len() * 2).max(DROPS_REMEMBERED);
        }
    }

    /// Drops every entry; reads in flight keep nothing.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.drops += 1;
        inner.all_dropped_at = inner.drops;
        inner.dropped.clear();
        inner.prune_at = DROPS_REMEMBERED;
        inner.entries.clear();
    }

    /// Follows `subscription` until `stop`, dropping what `drops` names
    /// for each event (a key as `Some(key)` or [`Dropping::Key`], `None`
    /// for nothing, or [`Dropping::Everything`]), and every entry when
    /// deliveries were missed (logged, naming `what` is kept).
    pub async fn follow<D: Into<Dropping<K>>>(
        &self,
        subscription: Subscription,
        stop: CancellationToken,
        what: &'static str,
        drops: impl Fn(&Event) -> D,
    ) {
        subscription
            .follow(stop, |heard| {
                match heard {
                    Heard::Event(event) => match drops(&event).into() {
                        Dropping::Nothing => {}
                        Dropping::Key(key) => self.forget(&key),
                        Dropping::Everything => self.forget_all(),
                    },
                    Heard::Missed(missed) => {
                        tracing::warn!(
                            missed,
                            kept = what,
                            "fell behind the event bus; forgetting everything kept"
                        );
                        self.forget_all();
                    }
                }
                std::future::ready(())
            })
            .await;
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

    #[test]
    fn a_drop_spoils_only_the_reads_of_its_key() {
        let memo: Memo<i64, &str> = Memo::new(Duration::from_secs(10), 10);
        let one = memo.get(&1).unwrap_err();
        let two = memo.get(&2).unwrap_err();
        memo.forget(&2);
        memo.keep(1, "one", one);
        memo.keep(2, "two", two);
        assert_eq!(memo.get(&1), Ok("one"), "another key's drop spoils nothing");
        assert!(memo.get(&2).is_err(), "its own drop spoils the read");

        // Many drops of other keys: the read is still kept.
        let three = memo.get(&3).unwrap_err();
        for key in 100..3_000 {
            memo.forget(&key);
        }
        memo.keep(3, "three", three);
        assert_eq!(memo.get(&3), Ok("three"));

        // A read that started before its key's drop, however many drops of
        // others came after, is not kept.
        let four = memo.get(&4).unwrap_err();
        memo.forget(&4);
        for key in 5_000..8_000 {
            memo.forget(&key);
        }
        memo.keep(4, "stale", four);
        assert!(memo.get(&4).is_err());
    }

    #[test]
    fn a_read_longer_than_the_ttl_is_not_kept() {
        let memo: Memo<i64, &str> = Memo::new(Duration::from_millis(20), 10);
        let ticket = memo.get(&1).unwrap_err();
        std::thread::sleep(Duration::from_millis(30));
        memo.keep(1, "late", ticket);
        assert!(memo.get(&1).is_err());
    }

    #[test]
    fn an_amend_changes_the_kept_value_unless_another_drop_came_first() {
        let memo: Memo<i64, Vec<&str>> = Memo::new(Duration::from_secs(10), 10);
        let read = memo.get(&1).unwrap_err();
        memo.keep(1, vec!["a"], read);

        // This replica's own change, with nothing in between: applied.
        let write = memo.ticket();
        memo.amend(&1, write, |v| v.push("b"));
        assert_eq!(memo.get(&1), Ok(vec!["a", "b"]));

        // Another writer's change (a drop) landed after the ticket: the
        // amend drops the entry rather than apply onto what may be stale.
        let write = memo.ticket();
        memo.forget(&1);
        let read = memo.get(&1).unwrap_err();
        memo.keep(1, vec!["c"], read);
        memo.amend(&1, write, |v| v.push("d"));
        assert!(memo.get(&1).is_err());

        // A read in flight across an amend is not kept: it may predate it.
        let read = memo.get(&2).unwrap_err();
        memo.amend(&2, memo.ticket(), |v| v.push("e"));
        assert!(memo.get(&2).is_err(), "nothing kept, nothing to amend");
        memo.keep(2, vec!["before"], read);
        assert!(memo.get(&2).is_err());
    }
}
