//! NPCs: who they are, where they stand, and their personality.

use serde::{Deserialize, Serialize};
use vdm_kit::validate::positive_filter;

use super::text::{TextRule, fingerprint, positive_id, text_field, unit_field};
use crate::error::{NpcError, NpcResult};

/// The largest |q| or |r| the world accepts for a cell.
pub const MAX_COORD: i32 = 100_000;

/// A hex cell in axial coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hex {
    /// Column.
    pub q: i32,
    /// Row.
    pub r: i32,
}

impl Hex {
    /// A cell.
    pub fn new(q: i32, r: i32) -> Hex {
        Hex { q, r }
    }

    /// Tells whether the coordinates are within what any map can hold.
    pub fn in_bounds(self) -> bool {
        (-MAX_COORD..=MAX_COORD).contains(&self.q) && (-MAX_COORD..=MAX_COORD).contains(&self.r)
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.q, self.r)
    }
}

/// Personality, each 0..=1; the rumor service reads them to decide how an
/// NPC retells what it heard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Traits {
    /// How readily it believes what it hears.
    pub gullibility: f32,
    /// How readily it passes things on.
    pub talkativeness: f32,
    /// How faithfully it retells.
    pub honesty: f32,
}

impl Default for Traits {
    fn default() -> Traits {
        Traits {
            gullibility: 0.5,
            talkativeness: 0.5,
            honesty: 0.5,
        }
    }
}

/// A stored NPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Npc {
    /// The NPC's id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The region it stands in.
    pub region_id: i64,
    /// The cell it stands on.
    pub position: Hex,
    /// Its faction, if any.
    pub faction_id: Option<i64>,
    /// Its personality.
    pub traits: Traits,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// An NPC as a client submits it, before validation.
#[derive(Debug, Clone, Default)]
pub struct NpcInput {
    /// See [`Npc::name`].
    pub name: String,
    /// See [`Npc::region_id`].
    pub region_id: i64,
    /// See [`Npc::position`]; the region's first cell when absent.
    pub position: Option<Hex>,
    /// See [`Npc::faction_id`].
    pub faction_id: Option<i64>,
    /// See [`Npc::traits`]; 0.5 each when absent.
    pub traits: Option<Traits>,
}

/// A validated NPC, ready for the world checks and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNpc {
    /// See [`Npc::name`].
    pub name: String,
    /// See [`Npc::region_id`].
    pub region_id: i64,
    /// See [`Npc::position`]; chosen from the region when absent.
    pub position: Option<Hex>,
    /// See [`Npc::faction_id`].
    pub faction_id: Option<i64>,
    /// See [`Npc::traits`].
    pub traits: Traits,
}

impl NewNpc {
    /// Validates a submitted NPC, naming the first field at fault. Whether
    /// the region, cell and faction exist is the world service's to say.
    pub fn parse(input: NpcInput) -> NpcResult<NewNpc> {
        let name = text_field("name", input.name, TextRule::line(100))?;
        positive_id("region_id", input.region_id)?;
        if let Some(hex) = input.position
            && !hex.in_bounds()
        {
            return Err(NpcError::OutsideMap(hex));
        }
        let faction_id = positive_filter("faction_id", input.faction_id)?;
        let traits = input.traits.unwrap_or_default();
        Ok(NewNpc {
            name,
            region_id: input.region_id,
            position: input.position,
            faction_id,
            traits: Traits {
                gullibility: unit_field("traits.gullibility", traits.gullibility)?,
                talkativeness: unit_field("traits.talkativeness", traits.talkativeness)?,
                honesty: unit_field("traits.honesty", traits.honesty)?,
            },
        })
    }

    /// A stable fingerprint, to tell an idempotent retry from a different
    /// request that reuses its key.
    pub fn fingerprint(&self) -> String {
        let position = self
            .position
            .map(|h| [1, i64::from(h.q), i64::from(h.r)])
            .unwrap_or([0, 0, 0]);
        fingerprint(
            &[&self.name],
            &[
                self.region_id,
                position[0],
                position[1],
                position[2],
                self.faction_id.unwrap_or(0),
                i64::from(self.traits.gullibility.to_bits()),
                i64::from(self.traits.talkativeness.to_bits()),
                i64::from(self.traits.honesty.to_bits()),
            ],
        )
    }
}

/// A change to an NPC as asked: each field `None` keeps its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NpcPatchInput {
    /// A new name.
    pub name: Option<String>,
    /// A new faction (`Some(None)`: none).
    pub faction_id: Option<Option<i64>>,
    /// New traits, whole.
    pub traits: Option<Traits>,
}

/// A checked [`NpcPatchInput`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NpcPatch {
    /// See [`Npc::name`].
    pub name: Option<String>,
    /// See [`Npc::faction_id`].
    pub faction_id: Option<Option<i64>>,
    /// See [`Npc::traits`].
    pub traits: Option<Traits>,
}

impl NpcPatch {
    /// Checks a change by the rules of [`NewNpc::parse`].
    pub fn parse(input: NpcPatchInput) -> NpcResult<NpcPatch> {
        let name = input
            .name
            .map(|name| text_field("name", name, TextRule::line(100)))
            .transpose()?;
        let faction_id = match input.faction_id {
            Some(faction) => Some(positive_filter("faction_id", faction)?),
            None => None,
        };
        let traits = match input.traits {
            Some(traits) => Some(Traits {
                gullibility: unit_field("traits.gullibility", traits.gullibility)?,
                talkativeness: unit_field("traits.talkativeness", traits.talkativeness)?,
                honesty: unit_field("traits.honesty", traits.honesty)?,
            }),
            None => None,
        };
        Ok(NpcPatch {
            name,
            faction_id,
            traits,
        })
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.faction_id.is_none() && self.traits.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NpcInput {
        NpcInput {
            name: " Hilda ".into(),
            region_id: 1,
            position: Some(Hex::new(0, 0)),
            faction_id: None,
            traits: Some(Traits {
                gullibility: 0.2,
                talkativeness: 0.9,
                honesty: 0.7,
            }),
        }
    }

    #[test]
    fn accepts_and_defaults() {
        let npc = NewNpc::parse(input()).unwrap();
        assert_eq!(npc.name, "Hilda");
        assert_eq!(npc.faction_id, None);
        let mut plain = input();
        plain.traits = None;
        assert_eq!(NewNpc::parse(plain).unwrap().traits, Traits::default());
    }

    #[test]
    fn a_patch_is_checked_as_a_new_npc_is() {
        let patch = NpcPatch::parse(NpcPatchInput {
            name: Some(" Ann ".into()),
            faction_id: Some(None),
            traits: None,
        })
        .unwrap();
        assert_eq!(patch.name.as_deref(), Some("Ann"));
        assert_eq!(patch.faction_id, Some(None));
        assert!(!patch.is_empty());
        assert!(NpcPatch::parse(NpcPatchInput::default()).unwrap().is_empty());
        let bad = NpcPatch::parse(NpcPatchInput {
            traits: Some(Traits {
                honesty: 1.5,
                ..Traits::default()
            }),
            ..NpcPatchInput::default()
        });
        assert!(bad.unwrap_err().to_string().contains("traits.honesty"));
        let bad = NpcPatch::parse(NpcPatchInput {
            faction_id: Some(Some(0)),
            ..NpcPatchInput::default()
        });
        assert!(bad.unwrap_err().to_string().contains("faction_id"));
    }

    #[test]
    fn names_the_field_at_fault() {
        type Mutation = fn(&mut NpcInput);
        let cases: Vec<(Mutation, &str)> = vec![
            (|i| i.name = " ".into(), "name must not be empty"),
            (|i| i.region_id = 0, "region_id"),
            (|i| i.faction_id = Some(-3), "faction_id"),
            (|i| i.position = Some(Hex::new(MAX_COORD + 1, 0)), "outside the map"),
            (
                |i| {
                    i.traits = Some(Traits {
                        honesty: 1.5,
                        ..Traits::default()
                    })
                },
                "traits.honesty must be between 0 and 1",
            ),
            (
                |i| {
                    i.traits = Some(Traits {
                        gullibility: f32::NAN,
                        ..Traits::default()
                    })
                },
                "traits.gullibility",
            ),
        ];
        for (mutate, needle) in cases {
            let mut bad = input();
            mutate(&mut bad);
            let message = NewNpc::parse(bad).unwrap_err().to_string();
            assert!(message.contains(needle), "{message:?} should name {needle}");
        }
    }

    #[test]
    fn fingerprints_differ_by_any_field() {
        let a = NewNpc::parse(input()).unwrap();
        let mut other = input();
        other.position = None;
        assert_ne!(a.fingerprint(), NewNpc::parse(other).unwrap().fingerprint());
        assert_eq!(a.fingerprint(), NewNpc::parse(input()).unwrap().fingerprint());
    }
}
