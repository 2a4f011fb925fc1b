//! Quest definitions as this replica's own work reads them: an accept, a
//! change of progress, a player's quest list. Each needs the definition
//! (its objectives' targets, its level requirement, its reward), and under
//! the mixed load those reads were a third of every cache `GET`, for a
//! handful of quests that hardly ever change.
//!
//! A definition is reused here for up to [`REUSE`] before the shared cache
//! is asked again. This replica's own update or delete drops it at once,
//! and a read that raced the drop is not kept (the generation counter);
//! another replica's change is seen within [`REUSE`]. Answers that name a
//! quest (`GetQuest`, lists, the gateway's edge cache refilling after a
//! change event) never come from here: they read the shared cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::Quest;

/// How long a definition is reused before the shared cache is asked again.
pub const REUSE: Duration = Duration::from_secs(2);
/// Definitions kept at most; past it the map starts over.
const MAX_ENTRIES: usize = 10_000;

/// The definitions this replica read lately, by quest id.
#[derive(Default)]
pub struct Definitions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every drop: a read that started before a drop may hold
    /// what the drop was about, and is not kept.
    generation: u64,
    entries: HashMap<i64, (Instant, Arc<Quest>)>,
}

impl Definitions {
    /// The definition of `id` when one younger than [`REUSE`] is kept;
    /// else the generation a read must present to [`Definitions::keep`].
    pub fn get(&self, id: i64) -> Result<Arc<Quest>, u64> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.entries.get(&id) {
            Some((read_at, quest)) if read_at.elapsed() < REUSE => Ok(quest.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Keeps `quest`, read under `generation`, unless a drop came since.
    pub fn keep(&self, quest: Arc<Quest>, generation: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(quest.id, (Instant::now(), quest));
    }

    /// Drops `id` (this replica changed or deleted it); reads in flight
    /// are not kept.
    pub fn drop_quest(&self, id: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.entries.remove(&id);
    }
}
