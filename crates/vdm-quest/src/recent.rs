//! The player quests this replica wrote lately, with their row versions.
//!
//! An accept or a change is a read (the row and its version) and a write
//! conditional on that version. Under the mixed load those two statements
//! were most of the quest pool's work, and the pool was where accepts
//! queued. The row a replica last wrote is almost always what the next
//! write to it starts from, so the write starts from here and skips the
//! read.
//!
//! Nothing here is ever served as an answer: an entry is only the base of
//! a conditional write. If another replica (or anything else) wrote the
//! row since, the version no longer matches, the write changes nothing, and
//! the caller forgets the entry and reads the row. A refusal decided from
//! an entry is checked against the database before it is returned
//! ([`Base::Remembered`]).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::{PlayerQuest, Quest};
use crate::store::Versioned;

/// Entries kept at most; past it the map starts over (an entry only saves
/// a read, so losing them all costs one read each).
const MAX_ENTRIES: usize = 50_000;

/// Where a write's starting point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// This replica's last write of the row: possibly behind another
    /// writer, so a refusal is rechecked against the database.
    Remembered,
    /// Read from the database just now.
    Read,
}

impl Base {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Base::Remembered => "remembered",
            Base::Read => "database",
        }
    }
}

/// The player quests this replica wrote, by (player, quest).
#[derive(Default)]
pub struct RecentWrites {
    entries: Mutex<HashMap<(i64, i64), Entry>>,
}

struct Entry {
    /// The definition the progress was built with: an entry made under an
    /// older definition (other objectives or targets) is not used.
    definition_ms: i64,
    written: Versioned,
}

impl RecentWrites {
    /// The row this replica last wrote for `player_id` and `quest`, when it
    /// was written under the quest's current definition.
    pub fn get(&self, player_id: i64, quest: &Quest) -> Option<Versioned> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&(player_id, quest.id))?;
        (entry.definition_ms == quest.updated_at_ms).then(|| entry.written.clone())
    }

    /// Remembers `written` as the row at `version`, built under `quest`.
    pub fn put(&self, quest: &Quest, written: &PlayerQuest, version: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (written.player_id, written.quest_id),
            Entry {
                definition_ms: quest.updated_at_ms,
                written: Versioned {
                    quest: written.clone(),
                    version,
                },
            },
        );
    }

    /// Whether `written` (from a `quest.updated` event) is the row this
    /// replica last wrote, as it wrote it: the event is its own write
    /// coming back.
    pub fn wrote(&self, written: &vdm_proto::quest::v1::PlayerQuest) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(written.player_id, written.quest_id))
            .is_some_and(|entry| vdm_proto::quest::v1::PlayerQuest::from(entry.written.quest.clone()) == *written)
    }

    /// Forgets the row of `player_id` and `quest_id` (a write found it
    /// changed).
    pub fn forget(&self, player_id: i64, quest_id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(player_id, quest_id));
    }

    /// Forgets every row of `quest_id` (the quest was deleted with them; an
    /// id a database hands out again must not meet the old rows' versions).
    pub fn forget_quest(&self, quest_id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(_, quest), _| *quest != quest_id);
    }
}
