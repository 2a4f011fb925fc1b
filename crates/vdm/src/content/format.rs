//! The world file format (`content/world.schema.json` describes the same):
//! its types, parsed with serde, and [`World::parse`], which reports every
//! problem with the JSON pointer of the place in the file it concerns. No
//! IO.
//!
//! Regions, factions and items carry their ids. NPCs get theirs from the
//! NPC service, so the file names them by `name` (unique in the file):
//! quests, memories and rumors refer to an NPC that way. A quest is known by
//! its `title` (unique in the file). Memories, events and rumors are things
//! that happen once: they are written with an idempotency key made from
//! their place in their list, so such a list may grow at its end but is
//! never reordered.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The demo world file of the repository, compiled in.
pub const DEMO_WORLD_JSON: &str = include_str!("../../../../content/demo-world.json");

/// The JSON Schema of the format, compiled in.
pub const WORLD_SCHEMA_JSON: &str = include_str!("../../../../content/world.schema.json");

/// The largest region radius a file may give (a hexagon of 1 261 cells).
pub const MAX_RADIUS: u8 = 20;
/// Largest change of standing or disposition a quest may give, either way.
pub const MAX_AMOUNT: i32 = 100;

/// The item rarities the player service knows.
pub const RARITIES: &[&str] = &["common", "uncommon", "rare", "epic", "legendary"];

/// A whole world, in the order it is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Where the JSON Schema is, for editors; ignored.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// What the file is, for people; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// Upserted by id.
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Upserted by id.
    #[serde(default)]
    pub factions: Vec<Faction>,
    /// Set to their score; pairs not listed are 0.
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// Known by name.
    #[serde(default)]
    pub npcs: Vec<Npc>,
    /// Memories of the NPCs, recorded once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memories: Vec<Memory>,
    /// World events, published once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The player service's item catalog, upserted by id; quest rewards
    /// name items by id.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Quests offered by the NPCs, known by title.
    #[serde(default)]
    pub quests: Vec<Quest>,
    /// Rumors for the NPCs to spread, started once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rumors: Vec<Rumor>,
}

/// A hex cell in axial coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hex {
    /// Column.
    pub q: i32,
    /// Row.
    pub r: i32,
}

/// A region: either the hexagon of `radius` around `center`, or the
/// `cells` listed (as `[q, r]` pairs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Its id in the world service.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Biome, free text.
    pub biome: String,
    /// The middle cell (with `radius`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<Hex>,
    /// Steps from the centre to the edge (with `center`): 0 is one cell, 2 is 19.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<u8>,
    /// The cells, each `[q, r]` (instead of `center` and `radius`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<[i32; 2]>,
}

impl Region {
    /// The region's cells: the hexagon of `radius` around `center` in q
    /// then r order, or the `cells` listed, in their order.
    pub fn cells(&self) -> Vec<Hex> {
        match (self.center, self.radius) {
            (Some(center), Some(radius)) => hexagon(center, radius),
            _ => self.cells.iter().map(|&[q, r]| Hex { q, r }).collect(),
        }
    }

    /// A region of these cells, written as a hexagon when they form one
    /// and as a list of cells (sorted) otherwise.
    pub fn from_cells(id: i64, name: String, biome: String, mut cells: Vec<Hex>) -> Region {
        cells.sort_unstable();
        cells.dedup();
        let shape = as_hexagon(&cells);
        Region {
            id,
            name,
            biome,
            center: shape.map(|(center, _)| center),
            radius: shape.map(|(_, radius)| radius),
            cells: match shape {
                Some(_) => Vec::new(),
                None => cells.iter().map(|c| [c.q, c.r]).collect(),
            },
        }
    }
}

/// The hexagon of `radius` around `center`, in q then r order.
pub fn hexagon(center: Hex, radius: u8) -> Vec<Hex> {
    let radius = i32::from(radius);
    let mut cells = Vec::new();
    for dq in -radius..=radius {
        for dr in (-radius).max(-dq - radius)..=radius.min(-dq + radius) {
            // Saturating: a centre off the map yields cells the world
            // service refuses, never an overflow.
            cells.push(Hex {
                q: center.q.saturating_add(dq),
                r: center.r.saturating_add(dr),
            });
        }
    }
    cells
}

/// The centre and radius of the hexagon these sorted, distinct cells
/// form, if they form one.
fn as_hexagon(cells: &[Hex]) -> Option<(Hex, u8)> {
    let n = i64::try_from(cells.len()).ok()?;
    // A hexagon of radius k has 3k(k+1)+1 cells.
    let radius = (0..=MAX_RADIUS).find(|&k| {
        let k = i64::from(k);
        3 * k * (k + 1) + 1 == n
    })?;
    let (sum_q, sum_r) = cells
        .iter()
        .fold((0i64, 0i64), |(q, r), c| (q + i64::from(c.q), r + i64::from(c.r)));
    if sum_q % n != 0 || sum_r % n != 0 {
        return None;
    }
    let center = Hex {
        q: i32::try_from(sum_q / n).ok()?,
        r: i32::try_from(sum_r / n).ok()?,
    };
    (hexagon(center, radius) == cells).then_some((center, radius))
}

/// A faction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faction {
    /// Its id in the world service.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// The standing between two factions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Npc {
    /// Display name, unique in the file: the others refer to the NPC by it.
    pub name: String,
    /// The id of the region it stands in (a region of this file).
    pub region: i64,
    /// The id of its faction; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faction: Option<i64>,
    /// How it passes on what it hears.
    pub traits: Traits,
}

/// An NPC's traits, each from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// A world event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub tradeable: bool,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A quest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quest {
    /// Short name, unique in the file: the import finds the live quest by it.
    pub title: String,
    /// Longer text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    /// Gold.
    #[serde(default)]
    pub gold: i64,
    /// Experience points.
    #[serde(default)]
    pub xp: i64,
    /// Item ids (items of this file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_ids: Vec<i64>,
    /// How much completing it raises the player's standing with the
    /// giver's faction, -100..=100 (absent: the quest service's default, 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<i32>,
    /// How much completing it raises the giver's disposition toward the
    /// player, -100..=100 (absent: the quest service's default, 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<i32>,
}

/// An objective of a quest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

/// A rumor; it starts in its origin NPC's region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rumor {
    /// The name of the NPC that starts it.
    pub origin: String,
    /// What it says.
    pub text: String,
    /// How true it is, from 0 to 1.
    pub truth: f32,
}

/// One thing wrong with a world file: where (a JSON pointer, `/npcs/3/region`;
/// empty for the whole document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The JSON pointer of the value concerned.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every problem found in a world file, each printed on its own line as
/// `FILE: /path: problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The file's name, as the reader should see it.
    pub file: String,
    /// What is wrong, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {problem}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl World {
    /// Parses a world file (`file` names it in the problems) and checks
    /// it: every value in range, ids and names unique, and every reference
    /// (region, faction, NPC, item) to something of the file.
    pub fn parse(file: &str, text: &str) -> Result<World, Problems> {
        let problems = |problems| Problems {
            file: file.to_owned(),
            problems,
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            problems(vec![Problem {
                path: String::new(),
                message: format!("not JSON: {e}"),
            }])
        })?;
        let world: World = decode(value).map_err(|problem| problems(vec![problem]))?;
        let found = world.check();
        if found.is_empty() {
            Ok(world)
        } else {
            Err(problems(found))
        }
    }

    /// The index in [`World::npcs`] of the NPC called `name`.
    pub fn npc_index(&self, name: &str) -> Option<usize> {
        self.npcs.iter().position(|npc| npc.name == name)
    }

    /// The region of the file with this id.
    pub fn region(&self, id: i64) -> Option<&Region> {
        self.regions.iter().find(|region| region.id == id)
    }

    /// Where the NPC at `index` of [`World::npcs`] is placed when created:
    /// each region's NPCs are spread over its cells, the k-th of a region
    /// on cell (5k + 3) mod n (distinct for k < n when 5 and n are coprime,
    /// as for the 19 cells of radius 2). `None` when the index or its
    /// region is not in the file.
    pub fn npc_position(&self, index: usize) -> Option<Hex> {
        let npc = self.npcs.get(index)?;
        let cells = self.region(npc.region)?.cells();
        let slot = self.npcs[..index]
            .iter()
            .filter(|other| other.region == npc.region)
            .count();
        cells.get((slot * 5 + 3) % cells.len().max(1)).copied()
    }

    /// Every problem of a decoded world, in file order.
    fn check(&self) -> Vec<Problem> {
        let mut out = Checker::default();
        let mut regions = HashSet::new();
        let mut cell_owner = HashMap::new();
        for (i, region) in self.regions.iter().enumerate() {
            let at = format!("/regions/{i}");
            out.positive(&format!("{at}/id"), region.id);
            if !regions.insert(region.id) {
                out.at(format!("{at}/id"), format!("region id {} is used twice", region.id));
            }
            out.text(&format!("{at}/name"), &region.name);
            match (region.center, region.radius, region.cells.is_empty()) {
                (Some(_), Some(radius), true) => {
                    if radius > MAX_RADIUS {
                        out.at(format!("{at}/radius"), format!("must be at most {MAX_RADIUS}"));
                    }
                }
                (None, None, false) => {
                    let mut seen = HashSet::new();
                    for (c, cell) in region.cells.iter().enumerate() {
                        if !seen.insert(*cell) {
                            out.at(format!("{at}/cells/{c}"), format!("cell {cell:?} is listed twice"));
                        }
                    }
                }
                _ => out.at(at.clone(), "give either `center` and `radius`, or `cells`".to_owned()),
            }
            for cell in region.cells() {
                if let Some(other) = cell_owner.insert(cell, region.id)
                    && other != region.id
                {
                    out.at(
                        at.clone(),
                        format!("cell [{}, {}] is also in region {other}", cell.q, cell.r),
                    );
                    break;
                }
            }
        }
        let mut factions = HashSet::new();
        for (i, faction) in self.factions.iter().enumerate() {
            let at = format!("/factions/{i}");
            out.positive(&format!("{at}/id"), faction.id);
            if !factions.insert(faction.id) {
                out.at(format!("{at}/id"), format!("faction id {} is used twice", faction.id));
            }
            out.text(&format!("{at}/name"), &faction.name);
        }
        let mut pairs = HashSet::new();
        for (i, relation) in self.relations.iter().enumerate() {
            let at = format!("/relations/{i}");
            for (field, id) in [("a", relation.a), ("b", relation.b)] {
                if !factions.contains(&id) {
                    out.at(
                        format!("{at}/{field}"),
                        format!("faction {id} is not defined in this file"),
                    );
                }
            }
            if relation.a == relation.b {
                out.at(format!("{at}/b"), "a faction has no relation with itself".to_owned());
            }
            if !(-100..=100).contains(&relation.score) {
                out.at(format!("{at}/score"), "must be from -100 to 100".to_owned());
            }
            if !pairs.insert((relation.a.min(relation.b), relation.a.max(relation.b))) {
                out.at(at, format!("the pair {}-{} is listed twice", relation.a, relation.b));
            }
        }
        let mut names = HashSet::new();
        for (i, npc) in self.npcs.iter().enumerate() {
            let at = format!("/npcs/{i}");
            out.text(&format!("{at}/name"), &npc.name);
            if !names.insert(npc.name.as_str()) {
                out.at(format!("{at}/name"), format!("npc {:?} is named twice", npc.name));
            }
            if !regions.contains(&npc.region) {
                out.at(
                    format!("{at}/region"),
                    format!("region {} is not defined in this file", npc.region),
                );
            }
            if let Some(faction) = npc.faction
                && !factions.contains(&faction)
            {
                out.at(
                    format!("{at}/faction"),
                    format!("faction {faction} is not defined in this file"),
                );
            }
            let traits = npc.traits;
            out.unit(&format!("{at}/traits/gullibility"), traits.gullibility);
            out.unit(&format!("{at}/traits/talkativeness"), traits.talkativeness);
            out.unit(&format!("{at}/traits/honesty"), traits.honesty);
        }
        let npc_named = |out: &mut Checker, path: String, name: &str| {
            if !names.contains(name) {
                out.at(path, format!("npc {name:?} is not defined in this file"));
            }
        };
        for (i, memory) in self.memories.iter().enumerate() {
            let at = format!("/memories/{i}");
            npc_named(&mut out, format!("{at}/npc"), &memory.npc);
            for (s, subject) in memory.subjects.iter().enumerate() {
                npc_named(&mut out, format!("{at}/subjects/{s}"), subject);
            }
            out.text(&format!("{at}/kind"), &memory.kind);
            out.text(&format!("{at}/text"), &memory.text);
            out.unit(&format!("{at}/importance"), memory.importance);
        }
        for (i, event) in self.events.iter().enumerate() {
            let at = format!("/events/{i}");
            out.text(&format!("{at}/kind"), &event.kind);
            out.text(&format!("{at}/text"), &event.text);
            if event.regions.is_empty() {
                out.at(format!("{at}/regions"), "names no region".to_owned());
            }
            for (r, id) in event.regions.iter().enumerate() {
                if !regions.contains(id) {
                    out.at(
                        format!("{at}/regions/{r}"),
                        format!("region {id} is not defined in this file"),
                    );
                }
            }
        }
        let mut items = HashSet::new();
        let mut keys = HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            let at = format!("/items/{i}");
            out.positive(&format!("{at}/id"), item.id);
            if !items.insert(item.id) {
                out.at(format!("{at}/id"), format!("item id {} is used twice", item.id));
            }
            if !keys.insert(item.key.as_str()) {
                out.at(format!("{at}/key"), format!("item key {:?} is used twice", item.key));
            }
            out.text(&format!("{at}/key"), &item.key);
            out.text(&format!("{at}/name"), &item.name);
            out.text(&format!("{at}/kind"), &item.kind);
            if !RARITIES.contains(&item.rarity.as_str()) {
                out.at(
                    format!("{at}/rarity"),
                    format!("{:?} is not one of {}", item.rarity, RARITIES.join(", ")),
                );
            }
            if item.max_stack == 0 {
                out.at(format!("{at}/max_stack"), "must be at least 1".to_owned());
            }
        }
        let mut titles = HashSet::new();
        for (i, quest) in self.quests.iter().enumerate() {
            let at = format!("/quests/{i}");
            out.text(&format!("{at}/title"), &quest.title);
            if !titles.insert(quest.title.as_str()) {
                out.at(
                    format!("{at}/title"),
                    format!("quest {:?} is titled twice", quest.title),
                );
            }
            npc_named(&mut out, format!("{at}/giver"), &quest.giver);
            if !regions.contains(&quest.region) {
                out.at(
                    format!("{at}/region"),
                    format!("region {} is not defined in this file", quest.region),
                );
            }
            if quest.reward.gold < 0 || quest.reward.xp < 0 {
                out.at(format!("{at}/reward"), "gold and xp must not be negative".to_owned());
            }
            for (field, amount) in [
                ("standing", quest.reward.standing),
                ("disposition", quest.reward.disposition),
            ] {
                if let Some(amount) = amount
                    && !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount)
                {
                    out.at(
                        format!("{at}/reward/{field}"),
                        format!("must be from -{MAX_AMOUNT} to {MAX_AMOUNT}"),
                    );
                }
            }
            for (r, id) in quest.reward.item_ids.iter().enumerate() {
                if !items.contains(id) {
                    out.at(
                        format!("{at}/reward/item_ids/{r}"),
                        format!("item {id} is not defined in this file"),
                    );
                }
            }
            if quest.objectives.is_empty() {
                out.at(format!("{at}/objectives"), "a quest needs an objective".to_owned());
            }
            for (o, objective) in quest.objectives.iter().enumerate() {
                out.text(&format!("{at}/objectives/{o}/description"), &objective.description);
                if objective.target_count == 0 {
                    out.at(
                        format!("{at}/objectives/{o}/target_count"),
                        "must be at least 1".to_owned(),
                    );
                }
            }
        }
        for (i, rumor) in self.rumors.iter().enumerate() {
            let at = format!("/rumors/{i}");
            npc_named(&mut out, format!("{at}/origin"), &rumor.origin);
            out.text(&format!("{at}/text"), &rumor.text);
            out.unit(&format!("{at}/truth"), rumor.truth);
        }
        out.problems
    }
}

/// Collects problems with their paths.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn at(&mut self, path: String, message: String) {
        self.problems.push(Problem { path, message });
    }

    fn positive(&mut self, path: &str, id: i64) {
        if id <= 0 {
            self.at(path.to_owned(), "an id must be positive".to_owned());
        }
    }

    fn text(&mut self, path: &str, text: &str) {
        if text.trim().is_empty() {
            self.at(path.to_owned(), "must not be empty".to_owned());
        }
    }

    fn unit(&mut self, path: &str, value: f32) {
        if !(0.0..=1.0).contains(&value) {
            self.at(path.to_owned(), "must be from 0 to 1".to_owned());
        }
    }
}

/// Decodes the document, naming the place of the first type error.
fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = pointer(err.path());
        let message = err.into_inner().to_string();
        Problem { path, message }
    })
}

/// A serde path as a JSON pointer (`/npcs/3/traits`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => out.push_str("/?"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn problems(text: &str) -> Vec<String> {
        World::parse("w.json", text)
            .unwrap_err()
            .to_string()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_region_of_radius_2_is_19_cells_and_is_found_again() {
        let cells = hexagon(Hex { q: 3, r: -1 }, 2);
        assert_eq!(cells.len(), 19);
        assert_eq!(cells.first(), Some(&Hex { q: 1, r: -1 }));
        let region = Region::from_cells(1, "r".into(), "b".into(), cells.clone());
        assert_eq!(region.center, Some(Hex { q: 3, r: -1 }));
        assert_eq!(region.radius, Some(2));
        assert!(region.cells.is_empty());
        assert_eq!(region.cells(), cells);

        // One cell more is no hexagon: the cells are listed.
        let mut more = cells;
        more.push(Hex { q: 9, r: 9 });
        let region = Region::from_cells(1, "r".into(), "b".into(), more.clone());
        assert_eq!(region.radius, None);
        assert_eq!(region.cells.len(), 20);
        more.sort_unstable();
        assert_eq!(region.cells(), more);
    }

    #[test]
    fn type_errors_name_their_place() {
        assert_eq!(
            problems(r#"{"regions": [], "colour": "red"}"#),
            [
                "w.json: /colour: unknown field `colour`, expected one of `$schema`, `about`, `regions`, `factions`, `relations`, `npcs`, `memories`, `events`, `items`, `quests`, `rumors`"
            ]
        );
        let bad = r#"{"npcs": [{"name": "Ann", "region": 1, "traits": {"gullibility": "high"}}]}"#;
        let found = problems(bad);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("w.json: /npcs/0/traits/gullibility: invalid type: string \"high\""),
            "{found:?}"
        );
        assert!(problems("{").first().unwrap().starts_with("w.json: /: not JSON: "));
    }

    #[test]
    fn every_broken_reference_is_named() {
        let npc = |name: &str, region: i64| {
            format!(
                r#"{{"name": "{name}", "region": {region}, "traits": {{"gullibility": 0.5, "talkativeness": 0.5, "honesty": 2}}}}"#
            )
        };
        let region = r#"{"id": 1, "name": "R", "biome": "b", "center": {"q": 0, "r": 0}, "radius": 1}"#;
        let text = format!(
            r#"{{
                "regions": [{region}, {{"id": 2, "name": "S", "biome": "b", "cells": [[1, 0], [5, 5]]}}],
                "factions": [{{"id": 1, "name": "F"}}],
                "relations": [{{"a": 1, "b": 7, "score": 120}}],
                "npcs": [{ann}, {ann}, {bob}],
                "items": [{{"id": 4, "key": "k", "name": "K", "kind": "key", "rarity": "mythic", "max_stack": 1}}],
                "quests": [{{"title": "Q", "giver": "Cid", "region": 1, "reward": {{"item_ids": [4, 99], "standing": 101, "disposition": -100}},
                            "objectives": [{{"description": "do", "target_count": 0}}]}}],
                "rumors": [{{"origin": "Dee", "text": "t", "truth": 0.5}}]
            }}"#,
            ann = npc("Ann", 1),
            bob = npc("Bob", 3),
        );
        assert_eq!(
            problems(&text),
            [
                "w.json: /regions/1: cell [1, 0] is also in region 1",
                "w.json: /relations/0/b: faction 7 is not defined in this file",
                "w.json: /relations/0/score: must be from -100 to 100",
                "w.json: /npcs/0/traits/honesty: must be from 0 to 1",
                "w.json: /npcs/1/name: npc \"Ann\" is named twice",
                "w.json: /npcs/1/traits/honesty: must be from 0 to 1",
                "w.json: /npcs/2/region: region 3 is not defined in this file",
                "w.json: /npcs/2/traits/honesty: must be from 0 to 1",
                "w.json: /items/0/rarity: \"mythic\" is not one of common, uncommon, rare, epic, legendary",
                "w.json: /quests/0/giver: npc \"Cid\" is not defined in this file",
                "w.json: /quests/0/reward/standing: must be from -100 to 100",
                "w.json: /quests/0/reward/item_ids/1: item 99 is not defined in this file",
                "w.json: /quests/0/objectives/0/target_count: must be at least 1",
                "w.json: /rumors/0/origin: npc \"Dee\" is not defined in this file",
            ]
        );
    }

    #[test]
    fn a_region_gives_one_shape() {
        let both = r#"{"regions": [{"id": 1, "name": "R", "biome": "b", "center": {"q": 0, "r": 0}, "radius": 1, "cells": [[0, 0]]}]}"#;
        assert_eq!(
            problems(both),
            ["w.json: /regions/0: give either `center` and `radius`, or `cells`"]
        );
    }
}
