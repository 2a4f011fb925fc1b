//! The demo world file (`content/demo-world.json`): its types, parsed with
//! serde, and the checks that its names resolve. No IO.
//!
//! Regions and factions carry their ids. NPCs get theirs from the NPC
//! service, so the file names them by `name`: quests, memories and rumors
//! refer to an NPC that way. NPCs, memories, events, quests and rumors are
//! created with an idempotency key made from their place in their list, so
//! such a list may grow at its end but is never reordered.

use std::collections::HashSet;

use serde::Deserialize;

use crate::VdmError;

/// The demo world file of the repository, compiled in.
pub const DEMO_WORLD_JSON: &str = include_str!("../../../../content/demo-world.json");

/// The whole demo world, in seeding order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoWorld {
    /// What the file is, for people; not seeded.
    #[serde(default)]
    pub about: Option<String>,
    /// Upserted by id.
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Upserted by id.
    #[serde(default)]
    pub factions: Vec<Faction>,
    /// Set to their score; pairs not listed stay at 0.
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// In a fresh world the NPC at index i gets id i + 1.
    #[serde(default)]
    pub npcs: Vec<Npc>,
    /// Memories of the NPCs.
    #[serde(default)]
    pub memories: Vec<Memory>,
    /// World events.
    #[serde(default)]
    pub events: Vec<Event>,
    /// The player service's item catalog (upserted by id, seeded only when
    /// the player service runs); quest rewards name items by id.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Quests offered by the NPCs.
    #[serde(default)]
    pub quests: Vec<Quest>,
    /// Rumors for the NPCs to spread (seeded only when the rumor service runs).
    #[serde(default)]
    pub rumors: Vec<Rumor>,
}

/// A hex cell in axial coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hex {
    /// Column.
    pub q: i32,
    /// Row.
    pub r: i32,
}

/// A region: the hexagon of `radius` around `center`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Its id in the world service.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Biome, free text.
    pub biome: String,
    /// The middle cell.
    pub center: Hex,
    /// Steps from the centre to the edge: 0 is one cell, 2 is 19.
    pub radius: u8,
}

impl Region {
    /// The region's cells: the hexagon of [`Region::radius`] around
    /// [`Region::center`], in q then r order.
    pub fn cells(&self) -> Vec<Hex> {
        let radius = i32::from(self.radius);
        let mut cells = Vec::new();
        for dq in -radius..=radius {
            for dr in (-radius).max(-dq - radius)..=radius.min(-dq + radius) {
                // Saturating: a centre off the map yields cells the world
                // service refuses, never an overflow.
                cells.push(Hex {
                    q: self.center.q.saturating_add(dq),
                    r: self.center.r.saturating_add(dr),
                });
            }
        }
        cells
    }
}

/// A faction.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faction {
    /// Its id in the world service.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// The standing between two factions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// One faction's id.
    pub a: i64,
    /// The other faction's id.
    pub b: i64,
    /// From -100 (war) to 100 (alliance).
    pub score: i32,
}

/// An NPC.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Npc {
    /// Display name, unique in the file: the others refer to the NPC by it.
    pub name: String,
    /// The id of the region it stands in (a region of this file).
    pub region: i64,
    /// The id of its faction; none when left out.
    #[serde(default)]
    pub faction: Option<i64>,
    /// How it passes on what it hears.
    pub traits: Traits,
}

/// An NPC's traits, each from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traits {
    /// How readily it believes what it hears.
    pub gullibility: f32,
    /// How readily it retells it.
    pub talkativeness: f32,
    /// How faithfully it retells it.
    pub honesty: f32,
}

/// Something an NPC remembers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// The name of the NPC that remembers.
    pub npc: String,
    /// `saw`, `heard`, `talked`, ...
    pub kind: String,
    /// What it remembers.
    pub text: String,
    /// From 0 to 1.
    pub importance: f32,
    /// The names of the NPCs it is about.
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// A world event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// `festival`, `storm`, ...
    pub kind: String,
    /// What happened.
    pub text: String,
    /// The ids of the regions it touches.
    pub regions: Vec<i64>,
}

/// A catalog item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Its id, chosen here (quest rewards name it).
    pub id: i64,
    /// A unique lowercase label.
    pub key: String,
    /// What players see.
    pub name: String,
    /// A lowercase label (`weapon`, `herb`).
    pub kind: String,
    /// common, uncommon, rare, epic or legendary.
    pub rarity: String,
    /// The most units one stack holds.
    pub max_stack: u32,
    /// Whether players may trade it (default: yes).
    #[serde(default = "yes")]
    pub tradeable: bool,
}

fn yes() -> bool {
    true
}

/// A quest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quest {
    /// Short name.
    pub title: String,
    /// Longer text.
    #[serde(default)]
    pub description: String,
    /// The name of the NPC that offers it.
    pub giver: String,
    /// The id of the region where it is offered.
    pub region: i64,
    /// The lowest level that may take it.
    #[serde(default)]
    pub level_requirement: u32,
    /// What it gives.
    #[serde(default)]
    pub reward: Reward,
    /// What must be done.
    pub objectives: Vec<Objective>,
}

/// The reward of a quest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    /// Gold.
    #[serde(default)]
    pub gold: i64,
    /// Experience points.
    #[serde(default)]
    pub xp: i64,
    /// Item ids.
    #[serde(default)]
    pub item_ids: Vec<i64>,
}

/// An objective of a quest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

/// A rumor; it starts in its origin NPC's region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rumor {
    /// The name of the NPC that starts it.
    pub origin: String,
    /// What it says.
    pub text: String,
    /// How true it is, from 0 to 1.
    pub truth: f32,
}

impl DemoWorld {
    /// Parses a demo world file and checks that every NPC name is unique,
    /// every NPC stands in a region of the file, and every name given for
    /// an NPC is one. The services check the rest when seeding.
    pub fn parse(text: &str) -> Result<DemoWorld, VdmError> {
        let world: DemoWorld = serde_json::from_str(text).map_err(|e| VdmError::Other(format!("demo world: {e}")))?;
        world
            .check()
            .map_err(|problem| VdmError::Other(format!("demo world: {problem}")))?;
        Ok(world)
    }

    /// The index in [`DemoWorld::npcs`] of the NPC called `name`.
    pub fn npc_index(&self, name: &str) -> Option<usize> {
        self.npcs.iter().position(|npc| npc.name == name)
    }

    /// The region of the file with this id.
    pub fn region(&self, id: i64) -> Option<&Region> {
        self.regions.iter().find(|region| region.id == id)
    }

    fn check(&self) -> Result<(), String> {
        let mut regions = HashSet::new();
        if let Some(twice) = self.regions.iter().find(|r| !regions.insert(r.id)) {
            return Err(format!("regions: id {} is used twice", twice.id));
        }
        let mut names = HashSet::new();
        if let Some(twice) = self.npcs.iter().find(|npc| !names.insert(npc.name.as_str())) {
            return Err(format!("npcs: {:?} is named twice", twice.name));
        }
        if let Some(npc) = self.npcs.iter().find(|npc| !regions.contains(&npc.region)) {
            return Err(format!("npc {:?}: no region has id {}", npc.name, npc.region));
        }
        let mut items = HashSet::new();
        if let Some(twice) = self.items.iter().find(|item| !items.insert(item.id)) {
            return Err(format!("items: id {} is used twice", twice.id));
        }
        for quest in &self.quests {
            if let Some(id) = quest.reward.item_ids.iter().find(|id| !items.contains(*id)) {
                return Err(format!("quest {:?}: reward item {id} is not in items", quest.title));
            }
        }
        let unknown = |name: &String| !names.contains(name.as_str());
        if let Some(quest) = self.quests.iter().find(|q| unknown(&q.giver)) {
            return Err(format!("quest {:?}: no npc is named {:?}", quest.title, quest.giver));
        }
        for (i, memory) in self.memories.iter().enumerate() {
            if let Some(name) = std::iter::once(&memory.npc)
                .chain(&memory.subjects)
                .find(|n| unknown(n))
            {
                return Err(format!("memory {i}: no npc is named {name:?}"));
            }
        }
        if let Some((i, rumor)) = self.rumors.iter().enumerate().find(|(_, r)| unknown(&r.origin)) {
            return Err(format!("rumor {i}: no npc is named {:?}", rumor.origin));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_region_of_radius_2_is_19_cells() {
        let region = Region {
            id: 1,
            name: "r".into(),
            biome: "b".into(),
            center: Hex { q: 0, r: 0 },
            radius: 2,
        };
        let cells = region.cells();
        assert_eq!(cells.len(), 19);
        assert_eq!(cells.first(), Some(&Hex { q: -2, r: 0 }));
        assert_eq!(cells.last(), Some(&Hex { q: 2, r: 0 }));
    }

    #[test]
    fn unknown_fields_and_names_are_refused() {
        let err = DemoWorld::parse(r#"{"regions": [], "colour": "red"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");

        let npc =
            r#"{"name": "Ann", "region": 1, "traits": {"gullibility": 0.5, "talkativeness": 0.5, "honesty": 0.5}}"#;
        let region = r#"{"id": 1, "name": "R", "biome": "b", "center": {"q": 0, "r": 0}, "radius": 1}"#;
        let twice = format!(r#"{{"regions": [{region}], "npcs": [{npc}, {npc}]}}"#);
        let err = DemoWorld::parse(&twice).unwrap_err();
        assert!(err.to_string().contains("\"Ann\" is named twice"), "{err}");

        let stranger = format!(
            r#"{{"regions": [{region}], "npcs": [{npc}], "rumors": [{{"origin": "Bob", "text": "t", "truth": 0.5}}]}}"#
        );
        let err = DemoWorld::parse(&stranger).unwrap_err();
        assert!(err.to_string().contains("no npc is named \"Bob\""), "{err}");

        let item = r#"{"id": 4, "key": "k", "name": "K", "kind": "key", "rarity": "common", "max_stack": 1}"#;
        let twice = format!(r#"{{"items": [{item}, {item}]}}"#);
        let err = DemoWorld::parse(&twice).unwrap_err();
        assert!(err.to_string().contains("items: id 4 is used twice"), "{err}");

        let homeless = format!(r#"{{"npcs": [{npc}]}}"#);
        let err = DemoWorld::parse(&homeless).unwrap_err();
        assert!(err.to_string().contains("no region has id 1"), "{err}");
    }
}
