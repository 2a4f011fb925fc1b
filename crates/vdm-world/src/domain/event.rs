//! World events: something that happened in some regions at a game time.

use super::text::{TextRule, fingerprint, invalid, positive_id, text_field, word_field};
use crate::error::WorldResult;

/// Most regions one event may affect.
pub const MAX_EVENT_REGIONS: usize = 64;

/// A stored world event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldEvent {
    /// The event's id.
    pub id: i64,
    /// A lowercase word (festival, storm, ...).
    pub kind: String,
    /// What happened.
    pub text: String,
    /// The regions affected, ascending.
    pub region_ids: Vec<i64>,
    /// The world clock's time when it was published.
    pub game_time_ms: i64,
    /// The real time it was published (Unix ms).
    pub created_at_ms: i64,
}

/// An event as submitted, before validation.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    /// See [`WorldEvent::kind`].
    pub kind: String,
    /// See [`WorldEvent::text`].
    pub text: String,
    /// See [`WorldEvent::region_ids`].
    pub region_ids: Vec<i64>,
}

/// A validated event, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// See [`WorldEvent::kind`].
    pub kind: String,
    /// See [`WorldEvent::text`].
    pub text: String,
    /// Distinct, ascending.
    pub region_ids: Vec<i64>,
}

impl NewEvent {
    /// Validates a submitted event, naming the first field at fault. That
    /// the regions exist is the store's to check.
    pub fn parse(input: EventInput) -> WorldResult<NewEvent> {
        let kind = word_field("kind", &input.kind)?;
        let text = text_field("text", input.text, TextRule::paragraph(2_000))?;
        if input.region_ids.is_empty() {
            return Err(invalid("region_ids must name at least one region".to_owned()));
        }
        if input.region_ids.len() > MAX_EVENT_REGIONS {
            return Err(invalid(format!(
                "region_ids may hold at most {MAX_EVENT_REGIONS} regions"
            )));
        }
        for id in &input.region_ids {
            positive_id("region_ids", *id)?;
        }
        let mut region_ids = input.region_ids;
        region_ids.sort_unstable();
        region_ids.dedup();
        Ok(NewEvent { kind, text, region_ids })
    }

    /// A stable fingerprint, for idempotent retries.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[&self.kind, &self.text], &self.region_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_dedups() {
        let event = NewEvent::parse(EventInput {
            kind: "storm".into(),
            text: "A storm".into(),
            region_ids: vec![3, 1, 3],
        })
        .unwrap();
        assert_eq!(event.region_ids, vec![1, 3]);
        let bad = |kind: &str, text: &str, ids: Vec<i64>| {
            NewEvent::parse(EventInput {
                kind: kind.into(),
                text: text.into(),
                region_ids: ids,
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("Storm", "x", vec![1]).contains("kind"));
        assert!(bad("storm", "", vec![1]).contains("text"));
        assert!(bad("storm", "x", vec![]).contains("region_ids"));
        assert!(bad("storm", "x", vec![-1]).contains("region_ids"));
    }
}
