//! What is live, read through the gateway ([`Live`]), and what an import
//! must write to make it match a file ([`Plan`]): one [`Step`] per entry
//! of the file, created, updated or unchanged, plus the conflicts the
//! import refuses to resolve. No IO: the plan is a function of the file
//! and the live state, so a dry run prints exactly what the import does.
//!
//! Regions, factions and items are matched by id, NPCs by name, quests by
//! title, relations by their pair of factions. Memories, events and rumors
//! happen once: they are written with an idempotency key from their place
//! in their list, and the service answers a repeat with the first write.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;

use super::format::{Faction, Hex, Item, Objective, Region, Relation, Reward, Traits, World};

/// A region as `GET /v1/world/regions` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveRegion {
    /// Its id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Biome.
    pub biome: String,
    /// Its cells as `[q, r]`.
    pub cells: Vec<[i32; 2]>,
}

/// `GET /v1/world/factions`.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveFactions {
    /// Every faction.
    pub items: Vec<Faction>,
    /// The pairs' scores.
    pub relations: Vec<Relation>,
}

/// An item as `GET /v1/items` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveItem {
    /// Its id.
    pub id: i64,
    /// Unique label.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Kind label.
    pub kind: String,
    /// Rarity.
    pub rarity: String,
    /// Stack cap.
    pub max_stack: u32,
    /// Tradeable.
    pub tradeable: bool,
}

/// An NPC as `GET /v1/npcs` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveNpc {
    /// Its id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Its region.
    pub region_id: i64,
    /// Its faction, if any.
    #[serde(default)]
    pub faction_id: Option<i64>,
    /// Its traits.
    pub traits: Traits,
}

/// A quest as `GET /v1/quests` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveQuest {
    /// Its id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Longer text (left out when empty).
    #[serde(default)]
    pub description: String,
    /// The NPC that offers it.
    pub giver_npc_id: i64,
    /// Where.
    pub region_id: i64,
    /// Lowest level.
    pub level_requirement: u32,
    /// Reward.
    pub reward: Reward,
    /// Objectives.
    pub objectives: Vec<LiveObjective>,
}

/// An objective as the gateway answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct LiveObjective {
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

/// Everything an import compares with, and an export writes.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Every region.
    pub regions: Vec<LiveRegion>,
    /// Every faction.
    pub factions: Vec<Faction>,
    /// Every pair's score.
    pub relations: Vec<Relation>,
    /// The item catalog.
    pub items: Vec<LiveItem>,
    /// Every NPC.
    pub npcs: Vec<LiveNpc>,
    /// Every quest.
    pub quests: Vec<LiveQuest>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The entry is not live: create it.
    Create,
    /// The entry is live and differs in these fields: write them.
    Update(Vec<&'static str>),
    /// Live as the file has it: nothing to write.
    Unchanged,
    /// Something that happens once (a memory, event or rumor): written
    /// with its idempotency key, which the service answers once.
    Once,
}

/// The write a step makes, by what it names in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `PUT /v1/world/regions/{id}` with `regions[i]`.
    Region(usize),
    /// `PUT /v1/world/factions/{id}` with `factions[i]`.
    Faction(usize),
    /// `PUT /v1/world/relations`: the pair `(a, b)` to this score.
    Relation(i64, i64, i32),
    /// `PUT /v1/items/{id}` with `items[i]`.
    Item(usize),
    /// `POST /v1/npcs` with `npcs[i]`.
    CreateNpc(usize),
    /// NPC `id` made as `npcs[index]` has it: `PATCH /v1/npcs/{id}` (its
    /// faction and traits) when it `changes`, `POST /v1/npcs/{id}/move` (to
    /// its place in its new region) when it `moves`.
    UpdateNpc {
        /// The live NPC.
        id: i64,
        /// Its entry in the file.
        index: usize,
        /// Its region differs.
        moves: bool,
        /// Its faction or traits differ.
        changes: bool,
    },
    /// `POST /v1/quests` with `quests[i]`.
    CreateQuest(usize),
    /// `PATCH /v1/quests/{id}` with `quests[i]`.
    PatchQuest(i64, usize),
    /// `POST /v1/npcs/{id}/memories` with `memories[i]`.
    Memory(usize),
    /// `POST /v1/world/events` with `events[i]`.
    Event(usize),
    /// `POST /v1/rumors` with `rumors[i]`.
    Rumor(usize),
}

/// One entry of the file and what the import does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `region`, `faction`, `relation`, `item`, `npc`, `quest`, `memory`,
    /// `event` or `rumor`.
    pub kind: &'static str,
    /// How a person finds the entry (`1 "Millbrook Vale"`, `"Hilda"`).
    pub label: String,
    /// What is done.
    pub action: Action,
    /// The write, unless unchanged.
    pub write: Option<Write>,
}

/// What an import of a file into a live world does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order they run: regions, factions, relations, items, NPCs,
    /// quests, memories, events, rumors.
    pub steps: Vec<Step>,
    /// Differences the import cannot write; an import with any writes
    /// nothing.
    pub conflicts: Vec<String>,
}

impl Plan {
    /// Compares `world` with `live`.
    pub fn new(world: &World, live: &Live) -> Plan {
        let mut plan = Plan::default();
        plan.regions(world, live);
        plan.factions(world, live);
        plan.relations(world, live);
        plan.items(world, live);
        let npc_ids = plan.npcs(world, live);
        plan.quests(world, live, &npc_ids);
        for (i, memory) in world.memories.iter().enumerate() {
            plan.once("memory", format!("{i} ({:?})", memory.npc), Write::Memory(i));
        }
        for (i, event) in world.events.iter().enumerate() {
            plan.once("event", format!("{i} ({})", event.kind), Write::Event(i));
        }
        for (i, rumor) in world.rumors.iter().enumerate() {
            plan.once("rumor", format!("{i} ({:?})", rumor.origin), Write::Rumor(i));
        }
        plan
    }

    /// The steps that write something that differs from what is live
    /// (creates and updates; not the unchanged nor the once-only ones).
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Create | Action::Update(_)))
    }

    fn push(&mut self, kind: &'static str, label: String, action: Action, write: Write) {
        let write = (action != Action::Unchanged).then_some(write);
        self.steps.push(Step {
            kind,
            label,
            action,
            write,
        });
    }

    fn once(&mut self, kind: &'static str, label: String, write: Write) {
        self.push(kind, label, Action::Once, write);
    }

    fn regions(&mut self, world: &World, live: &Live) {
        for (i, region) in world.regions.iter().enumerate() {
            let action = match live.regions.iter().find(|r| r.id == region.id) {
                None => Action::Create,
                Some(now) => {
                    let mut want: Vec<Hex> = region.cells();
                    want.sort_unstable();
                    let mut have: Vec<Hex> = now.cells.iter().map(|&[q, r]| Hex { q, r }).collect();
                    have.sort_unstable();
                    differences([
                        ("name", now.name != region.name),
                        ("biome", now.biome != region.biome),
                        ("cells", want != have),
                    ])
                }
            };
            self.push(
                "region",
                format!("{} {:?}", region.id, region.name),
                action,
                Write::Region(i),
            );
        }
    }

    fn factions(&mut self, world: &World, live: &Live) {
        for (i, faction) in world.factions.iter().enumerate() {
            let action = match live.factions.iter().find(|f| f.id == faction.id) {
                None => Action::Create,
                Some(now) => differences([("name", now.name != faction.name)]),
            };
            self.push(
                "faction",
                format!("{} {:?}", faction.id, faction.name),
                action,
                Write::Faction(i),
            );
        }
    }

    /// Every pair of the file's factions gets the file's score (0 when not
    /// listed); pairs with a faction the file does not name are left alone.
    fn relations(&mut self, world: &World, live: &Live) {
        let pair = |a: i64, b: i64| (a.min(b), a.max(b));
        let mut want: BTreeMap<(i64, i64), Option<i32>> = BTreeMap::new();
        for relation in &world.relations {
            want.insert(pair(relation.a, relation.b), Some(relation.score));
        }
        let ours = |id: i64| world.factions.iter().any(|f| f.id == id);
        let have: HashMap<(i64, i64), i32> = live.relations.iter().map(|r| (pair(r.a, r.b), r.score)).collect();
        for (&(a, b), &score) in &have {
            if score != 0 && ours(a) && ours(b) {
                want.entry((a, b)).or_insert(None);
            }
        }
        for ((a, b), score) in want {
            let score = score.unwrap_or(0);
            let action = match have.get(&(a, b)).copied().unwrap_or(0) {
                now if now == score => Action::Unchanged,
                _ if !have.contains_key(&(a, b)) => Action::Create,
                _ => Action::Update(vec!["score"]),
            };
            self.push("relation", format!("{a}-{b}"), action, Write::Relation(a, b, score));
        }
    }

    fn items(&mut self, world: &World, live: &Live) {
        for (i, item) in world.items.iter().enumerate() {
            let action = match live.items.iter().find(|it| it.id == item.id) {
                None => Action::Create,
                Some(now) => differences([
                    ("key", now.key != item.key),
                    ("name", now.name != item.name),
                    ("kind", now.kind != item.kind),
                    ("rarity", now.rarity != item.rarity),
                    ("max_stack", now.max_stack != item.max_stack),
                    ("tradeable", now.tradeable != item.tradeable),
                ]),
            };
            self.push("item", format!("{} {:?}", item.id, item.key), action, Write::Item(i));
        }
    }

    /// The NPCs; returns the live id of each NPC of the file that is live,
    /// by name.
    fn npcs(&mut self, world: &World, live: &Live) -> HashMap<String, i64> {
        let mut by_name: HashMap<&str, Vec<&LiveNpc>> = HashMap::new();
        for npc in &live.npcs {
            by_name.entry(npc.name.as_str()).or_default().push(npc);
        }
        let mut ids = HashMap::new();
        for (i, npc) in world.npcs.iter().enumerate() {
            let label = format!("{:?}", npc.name);
            let now = match by_name.get(npc.name.as_str()).map(Vec::as_slice) {
                None | Some([]) => {
                    self.push("npc", label, Action::Create, Write::CreateNpc(i));
                    continue;
                }
                Some([one]) => *one,
                Some(many) => {
                    let listed: Vec<String> = many.iter().map(|n| n.id.to_string()).collect();
                    self.conflicts.push(format!(
                        "npc {:?}: the live NPCs {} share this name, so the import cannot tell which one the file means",
                        npc.name,
                        listed.join(", ")
                    ));
                    continue;
                }
            };
            ids.insert(npc.name.clone(), now.id);
            let action = differences([
                ("region", now.region_id != npc.region),
                ("faction", now.faction_id != npc.faction),
                ("traits", now.traits != npc.traits),
            ]);
            let write = Write::UpdateNpc {
                id: now.id,
                index: i,
                moves: now.region_id != npc.region,
                changes: now.faction_id != npc.faction || now.traits != npc.traits,
            };
            self.push("npc", label, action, write);
        }
        ids
    }

    fn quests(&mut self, world: &World, live: &Live, npc_ids: &HashMap<String, i64>) {
        for (i, quest) in world.quests.iter().enumerate() {
            let label = format!("{:?}", quest.title);
            let matches: Vec<&LiveQuest> = live.quests.iter().filter(|q| q.title == quest.title).collect();
            let now = match matches.as_slice() {
                [] => {
                    self.push("quest", label, Action::Create, Write::CreateQuest(i));
                    continue;
                }
                [one] => *one,
                many => {
                    let listed: Vec<String> = many.iter().map(|q| q.id.to_string()).collect();
                    self.conflicts.push(format!(
                        "quest {:?}: the live quests {} share this title, so the import cannot tell which one the file means",
                        quest.title,
                        listed.join(", ")
                    ));
                    continue;
                }
            };
            let objectives: Vec<Objective> = now
                .objectives
                .iter()
                .map(|o| Objective {
                    description: o.description.clone(),
                    target_count: o.target_count,
                })
                .collect();
            if objectives != quest.objectives {
                self.conflicts.push(format!(
                    "quest {:?} (id {}): its objectives differ from the file's; a quest's objectives are fixed once players may hold progress on them (give the changed quest a new title)",
                    quest.title, now.id
                ));
            }
            // A giver not yet live is created by this import, so it differs.
            let giver = npc_ids.get(&quest.giver).copied();
            let action = differences([
                ("description", now.description != quest.description),
                ("giver", giver != Some(now.giver_npc_id)),
                ("region", now.region_id != quest.region),
                ("level_requirement", now.level_requirement != quest.level_requirement),
                ("reward", now.reward != quest.reward),
            ]);
            self.push("quest", label, action, Write::PatchQuest(now.id, i));
        }
    }
}

/// `Update` with the fields that differ, or `Unchanged`.
fn differences<const N: usize>(fields: [(&'static str, bool); N]) -> Action {
    let changed: Vec<&'static str> = fields
        .into_iter()
        .filter_map(|(field, differs)| differs.then_some(field))
        .collect();
    if changed.is_empty() {
        Action::Unchanged
    } else {
        Action::Update(changed)
    }
}

impl fmt::Display for Plan {
    /// One line per create or update, one per once-only entry, the
    /// conflicts, and a count per kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            match &step.action {
                Action::Create => writeln!(f, "create {} {}", step.kind, step.label)?,
                Action::Update(fields) => writeln!(f, "update {} {} ({})", step.kind, step.label, fields.join(", "))?,
                Action::Once => writeln!(f, "once   {} {}", step.kind, step.label)?,
                Action::Unchanged => {}
            }
        }
        for conflict in &self.conflicts {
            writeln!(f, "conflict: {conflict}")?;
        }
        let mut counts: Vec<(&str, [usize; 4])> = Vec::new();
        for step in &self.steps {
            let slot = match step.action {
                Action::Create => 0,
                Action::Update(_) => 1,
                Action::Unchanged => 2,
                Action::Once => 3,
            };
            match counts.iter_mut().find(|(kind, _)| *kind == step.kind) {
                Some((_, count)) => count[slot] += 1,
                None => {
                    let mut count = [0; 4];
                    count[slot] = 1;
                    counts.push((step.kind, count));
                }
            }
        }
        for (kind, [create, update, unchanged, once]) in counts {
            if once > 0 {
                writeln!(f, "{kind}: {once} written once (by idempotency key)")?;
            } else {
                writeln!(
                    f,
                    "{kind}: {create} to create, {update} to update, {unchanged} unchanged"
                )?;
            }
        }
        Ok(())
    }
}

/// The live world as a file: regions, factions, relations that are not 0,
/// items, NPCs (by id) and quests (by id). Memories, events and rumors are
/// what happened, not content, and are left out. A quest whose giver is no
/// live NPC names it `#<id>`, which `validate` then reports.
pub fn export(live: &Live) -> World {
    let mut regions: Vec<&LiveRegion> = live.regions.iter().collect();
    regions.sort_by_key(|r| r.id);
    let mut factions = live.factions.clone();
    factions.sort_by_key(|f| f.id);
    let mut relations: Vec<Relation> = live
        .relations
        .iter()
        .filter(|r| r.score != 0)
        .map(|r| Relation {
            a: r.a.min(r.b),
            b: r.a.max(r.b),
            score: r.score,
        })
        .collect();
    relations.sort_by_key(|r| (r.a, r.b));
    let mut items: Vec<&LiveItem> = live.items.iter().collect();
    items.sort_by_key(|i| i.id);
    let mut npcs: Vec<&LiveNpc> = live.npcs.iter().collect();
    npcs.sort_by_key(|n| n.id);
    let mut quests: Vec<&LiveQuest> = live.quests.iter().collect();
    quests.sort_by_key(|q| q.id);
    let names: HashMap<i64, &str> = live.npcs.iter().map(|n| (n.id, n.name.as_str())).collect();
    World {
        schema: None,
        about: None,
        regions: regions
            .into_iter()
            .map(|r| {
                let cells = r.cells.iter().map(|&[q, r]| Hex { q, r }).collect();
                Region::from_cells(r.id, r.name.clone(), r.biome.clone(), cells)
            })
            .collect(),
        factions,
        relations,
        npcs: npcs
            .into_iter()
            .map(|n| super::format::Npc {
                name: n.name.clone(),
                region: n.region_id,
                faction: n.faction_id,
                traits: n.traits,
            })
            .collect(),
        memories: Vec::new(),
        events: Vec::new(),
        items: items
            .into_iter()
            .map(|i| Item {
                id: i.id,
                key: i.key.clone(),
                name: i.name.clone(),
                kind: i.kind.clone(),
                rarity: i.rarity.clone(),
                max_stack: i.max_stack,
                tradeable: i.tradeable,
            })
            .collect(),
        quests: quests
            .into_iter()
            .map(|q| super::format::Quest {
                title: q.title.clone(),
                description: q.description.clone(),
                giver: names
                    .get(&q.giver_npc_id)
                    .map_or_else(|| format!("#{}", q.giver_npc_id), |name| (*name).to_owned()),
                region: q.region_id,
                level_requirement: q.level_requirement,
                reward: q.reward.clone(),
                objectives: q
                    .objectives
                    .iter()
                    .map(|o| Objective {
                        description: o.description.clone(),
                        target_count: o.target_count,
                    })
                    .collect(),
            })
            .collect(),
        rumors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn demo() -> World {
        World::parse("demo", super::super::format::DEMO_WORLD_JSON).unwrap()
    }

    /// The live state an import of `world` into an empty system leaves.
    fn live_of(world: &World) -> Live {
        Live {
            regions: world
                .regions
                .iter()
                .map(|r| LiveRegion {
                    id: r.id,
                    name: r.name.clone(),
                    biome: r.biome.clone(),
                    cells: r.cells().iter().rev().map(|c| [c.q, c.r]).collect(),
                })
                .collect(),
            factions: world.factions.clone(),
            relations: world.relations.clone(),
            items: world
                .items
                .iter()
                .map(|i| LiveItem {
                    id: i.id,
                    key: i.key.clone(),
                    name: i.name.clone(),
                    kind: i.kind.clone(),
                    rarity: i.rarity.clone(),
                    max_stack: i.max_stack,
                    tradeable: i.tradeable,
                })
                .collect(),
            npcs: world
                .npcs
                .iter()
                .enumerate()
                .map(|(i, n)| LiveNpc {
                    id: i as i64 + 1,
                    name: n.name.clone(),
                    region_id: n.region,
                    faction_id: n.faction,
                    traits: n.traits,
                })
                .collect(),
            quests: world
                .quests
                .iter()
                .enumerate()
                .map(|(i, q)| LiveQuest {
                    id: i as i64 + 1,
                    title: q.title.clone(),
                    description: q.description.clone(),
                    giver_npc_id: world.npc_index(&q.giver).unwrap() as i64 + 1,
                    region_id: q.region,
                    level_requirement: q.level_requirement,
                    reward: q.reward.clone(),
                    objectives: q
                        .objectives
                        .iter()
                        .map(|o| LiveObjective {
                            description: o.description.clone(),
                            target_count: o.target_count,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_empty_world_gets_everything_created() {
        let world = demo();
        let plan = Plan::new(&world, &Live::default());
        assert!(plan.conflicts.is_empty());
        let creates = plan.steps.iter().filter(|s| s.action == Action::Create).count();
        assert_eq!(
            creates,
            world.regions.len()
                + world.factions.len()
                + world.relations.len()
                + world.items.len()
                + world.npcs.len()
                + world.quests.len()
        );
        let text = plan.to_string();
        assert!(text.contains("create region 1 \"Millbrook Vale\"\n"), "{text}");
        assert!(text.contains("npc: 32 to create, 0 to update, 0 unchanged\n"), "{text}");
    }

    #[test]
    fn what_is_live_as_the_file_has_it_is_unchanged_and_a_change_is_one_update() {
        let world = demo();
        let mut live = live_of(&world);
        let plan = Plan::new(&world, &live);
        assert_eq!(plan.changes().count(), 0, "{plan}");
        assert!(plan.conflicts.is_empty());

        live.regions[1].name = "Elsewhere".into();
        live.quests[2].reward.gold += 1;
        live.relations.push(Relation { a: 3, b: 4, score: 5 });
        let plan = Plan::new(&world, &live);
        let changes: Vec<String> = plan
            .changes()
            .map(|s| format!("{} {} {:?}", s.kind, s.label, s.action))
            .collect();
        assert_eq!(
            changes,
            [
                "region 2 \"Mirrormere Shore\" Update([\"name\"])",
                "relation 3-4 Update([\"score\"])",
                "quest \"Herbs for the Healer\" Update([\"reward\"])",
            ]
        );
        assert!(plan.steps.iter().any(|s| s.write == Some(Write::Relation(3, 4, 0))));
    }

    #[test]
    fn what_an_import_cannot_write_is_a_conflict() {
        let world = demo();
        let mut live = live_of(&world);
        live.quests[0].objectives.pop();
        let twin = live.npcs[1].clone();
        live.npcs.push(LiveNpc { id: 99, ..twin });
        let plan = Plan::new(&world, &live);
        assert_eq!(plan.conflicts.len(), 2, "{:?}", plan.conflicts);
        assert!(plan.conflicts[0].starts_with("npc \"Brother Aldo\": the live NPCs 2, 99 share this name"));
        assert!(plan.conflicts[1].starts_with("quest \"Wolves at the Mill\" (id 1): its objectives differ"));
    }

    #[test]
    fn an_npc_is_changed_and_moved_as_the_file_says() {
        let world = demo();
        let mut live = live_of(&world);
        live.npcs[0].traits.honesty = 0.1;
        live.npcs[1].region_id = 2;
        live.npcs[2].faction_id = None;
        let plan = Plan::new(&world, &live);
        let npcs: Vec<(String, Action, Option<Write>)> = plan
            .changes()
            .map(|s| (s.label.clone(), s.action.clone(), s.write.clone()))
            .collect();
        let update = |id, index, moves, changes| {
            Some(Write::UpdateNpc {
                id,
                index,
                moves,
                changes,
            })
        };
        assert_eq!(
            npcs,
            [
                (
                    "\"Hilda the Miller\"".into(),
                    Action::Update(vec!["traits"]),
                    update(1, 0, false, true)
                ),
                (
                    "\"Brother Aldo\"".into(),
                    Action::Update(vec!["region"]),
                    update(2, 1, true, false)
                ),
                (
                    "\"Mother Wren\"".into(),
                    Action::Update(vec!["faction"]),
                    update(3, 2, false, true)
                ),
            ]
        );
    }

    #[test]
    fn an_export_of_what_a_file_made_is_that_file() {
        let world = demo();
        let exported = export(&live_of(&world));
        let expected = World {
            schema: None,
            about: None,
            memories: Vec::new(),
            events: Vec::new(),
            rumors: Vec::new(),
            ..world
        };
        assert_eq!(exported, expected);
    }
}
