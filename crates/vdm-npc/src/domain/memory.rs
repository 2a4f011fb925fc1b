//! Memories: what an NPC remembers. Each NPC keeps a bounded number; when a
//! new memory takes it over the cap, it forgets the least important first,
//! and among equally important ones the oldest (by game time, then by id).

use std::cmp::Ordering;

use super::text::{TextRule, fingerprint, invalid, positive_id, text_field, unit_field, word_field};
use crate::error::NpcResult;

/// Most subject ids one memory may name.
pub const MAX_SUBJECTS: usize = 16;

/// A stored memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// The memory's id.
    pub id: i64,
    /// The NPC that remembers.
    pub npc_id: i64,
    /// A lowercase word (saw, heard, talked, ...).
    pub kind: String,
    /// What it remembers.
    pub text: String,
    /// Who or what it is about.
    pub subject_ids: Vec<i64>,
    /// 0..=1.
    pub importance: f32,
    /// When it happened (world clock).
    pub game_time_ms: i64,
    /// When it was recorded (Unix ms).
    pub created_at_ms: i64,
}

/// A memory as submitted, before validation.
#[derive(Debug, Clone, Default)]
pub struct MemoryInput {
    /// See [`Memory::npc_id`].
    pub npc_id: i64,
    /// See [`Memory::kind`].
    pub kind: String,
    /// See [`Memory::text`].
    pub text: String,
    /// See [`Memory::subject_ids`].
    pub subject_ids: Vec<i64>,
    /// See [`Memory::importance`].
    pub importance: f32,
    /// See [`Memory::game_time_ms`]; the world clock's now when absent.
    pub game_time_ms: Option<i64>,
}

/// A validated memory, ready to store once its game time is known.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMemory {
    /// See [`Memory::npc_id`].
    pub npc_id: i64,
    /// See [`Memory::kind`].
    pub kind: String,
    /// See [`Memory::text`].
    pub text: String,
    /// Distinct, in the order given.
    pub subject_ids: Vec<i64>,
    /// See [`Memory::importance`].
    pub importance: f32,
    /// See [`MemoryInput::game_time_ms`].
    pub game_time_ms: Option<i64>,
}

impl NewMemory {
    /// Validates a submitted memory, naming the first field at fault.
    pub fn parse(input: MemoryInput) -> NpcResult<NewMemory> {
        positive_id("npc_id", input.npc_id)?;
        let kind = word_field("kind", &input.kind)?;
        let text = text_field("text", input.text, TextRule::paragraph(1_000))?;
        if input.subject_ids.len() > MAX_SUBJECTS {
            return Err(invalid(format!("subject_ids may hold at most {MAX_SUBJECTS} ids")));
        }
        let mut subject_ids = Vec::with_capacity(input.subject_ids.len());
        for id in input.subject_ids {
            positive_id("subject_ids", id)?;
            if !subject_ids.contains(&id) {
                subject_ids.push(id);
            }
        }
        let importance = unit_field("importance", input.importance)?;
        if let Some(t) = input.game_time_ms
            && t < 0
        {
            return Err(invalid(format!("game_time_ms must not be negative, got {t}")));
        }
        Ok(NewMemory {
            npc_id: input.npc_id,
            kind,
            text,
            subject_ids,
            importance,
            game_time_ms: input.game_time_ms,
        })
    }

    /// A stable fingerprint, to tell an idempotent retry from a different
    /// request that reuses its key.
    pub fn fingerprint(&self) -> String {
        let mut ints = vec![
            self.npc_id,
            i64::from(self.importance.to_bits()),
            self.game_time_ms.unwrap_or(-1),
        ];
        ints.extend(&self.subject_ids);
        fingerprint(&[&self.kind, &self.text], &ints)
    }
}

/// What eviction needs to know of a memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryRank {
    /// The memory's id.
    pub id: i64,
    /// See [`Memory::importance`].
    pub importance: f32,
    /// See [`Memory::game_time_ms`].
    pub game_time_ms: i64,
}

/// The memories to forget so that at most `cap` remain: least important
/// first, then oldest in game time, then lowest id (recorded first).
pub fn memories_to_drop(memories: &[MemoryRank], cap: usize) -> Vec<i64> {
    if memories.len() <= cap {
        return Vec::new();
    }
    let mut ranked: Vec<MemoryRank> = memories.to_vec();
    ranked.sort_by(|a, b| {
        a.importance
            .partial_cmp(&b.importance)
            .unwrap_or(Ordering::Equal)
            .then(a.game_time_ms.cmp(&b.game_time_ms))
            .then(a.id.cmp(&b.id))
    });
    ranked.truncate(memories.len() - cap);
    ranked.into_iter().map(|m| m.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(id: i64, importance: f32, game_time_ms: i64) -> MemoryRank {
        MemoryRank {
            id,
            importance,
            game_time_ms,
        }
    }

    #[test]
    fn forgets_unimportant_then_old() {
        let memories = [
            rank(1, 0.9, 100),
            rank(2, 0.1, 500),
            rank(3, 0.1, 200),
            rank(4, 0.5, 50),
            rank(5, 0.1, 200),
        ];
        assert_eq!(memories_to_drop(&memories, 5), Vec::<i64>::new());
        assert_eq!(memories_to_drop(&memories, 4), vec![3]);
        assert_eq!(memories_to_drop(&memories, 2), vec![3, 5, 2]);
        assert_eq!(memories_to_drop(&memories, 1), vec![3, 5, 2, 4]);
    }

    #[test]
    fn validates() {
        let ok = MemoryInput {
            npc_id: 1,
            kind: "saw".into(),
            text: "Wolves by the mill".into(),
            subject_ids: vec![3, 3, 4],
            importance: 0.4,
            game_time_ms: None,
        };
        assert_eq!(NewMemory::parse(ok.clone()).unwrap().subject_ids, vec![3, 4]);
        let mut bad = ok.clone();
        bad.importance = 2.0;
        assert!(NewMemory::parse(bad).unwrap_err().to_string().contains("importance"));
        let mut bad = ok.clone();
        bad.text = String::new();
        assert!(NewMemory::parse(bad).unwrap_err().to_string().contains("text"));
        let mut bad = ok;
        bad.subject_ids = (1..=17).collect();
        assert!(NewMemory::parse(bad).unwrap_err().to_string().contains("subject_ids"));
    }
}
