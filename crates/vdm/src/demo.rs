//! The demo world the embedded default seeds on first start, through the
//! services' own gRPC APIs: four regions of hex cells, five factions and
//! their relations, 32 NPCs with traits (the first 24 give the quests), a few
//! memories and world events, eight quests, and four rumors for the NPCs
//! to spread. Regions and factions are
//! upserted by id and relations set to fixed scores; every create carries a
//! fixed idempotency key. So seeding again on a later start creates nothing.

use std::net::SocketAddr;
use std::time::Duration;

use vdm_kit::grpc::GrpcChannel;
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_proto::rumor::v1 as rumor_pb;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;
use vdm_proto::world::v1 as world_pb;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::VdmError;

/// (id, name, biome, centre (q, r)): each region is the hexagon of radius 2
/// around its centre (19 cells). The centres are 5 steps apart, so the
/// hexagons touch: 1 borders 2, 3 and 4; 4 borders every other.
pub const REGIONS: &[(i64, &str, &str, (i32, i32))] = &[
    (1, "Millbrook Vale", "farmland", (0, 0)),
    (2, "Mirrormere Shore", "lake", (5, -3)),
    (3, "Saltmarsh Harbour", "coast", (-2, 5)),
    (4, "The Ember Dunes", "desert", (3, 2)),
];

/// The radius of every demo region's hexagon.
pub const REGION_RADIUS: i32 = 2;

/// (id, name).
pub const FACTIONS: &[(i64, &str)] = &[
    (1, "The Crown Wardens"),
    (2, "Harbour Syndicate"),
    (3, "Brotherhood of the Abbey"),
    (4, "Glassmakers' Guild"),
    (5, "Free Folk of the Vale"),
];

/// (faction a, faction b, score); pairs not listed stay at 0.
pub const RELATIONS: &[(i64, i64, i32)] = &[
    (1, 2, -70),
    (1, 3, 40),
    (1, 4, 10),
    (1, 5, 20),
    (2, 3, -30),
    (2, 4, 35),
    (2, 5, -10),
    (3, 5, 50),
    (4, 5, 15),
];

/// (name, region, faction (0: none), gullibility, talkativeness, honesty).
/// In a fresh world the NPC at index i gets id i + 1.
pub const NPCS: &[(&str, i64, i64, f32, f32, f32)] = &[
    ("Hilda the Miller", 1, 5, 0.30, 0.80, 0.70),
    ("Brother Aldo", 1, 3, 0.55, 0.40, 0.95),
    ("Mother Wren", 1, 3, 0.20, 0.50, 0.85),
    ("Tobin Reed", 1, 5, 0.75, 0.90, 0.60),
    ("Sergeant Maud Harrow", 1, 1, 0.15, 0.30, 0.80),
    ("Pell the Tinker", 1, 0, 0.50, 0.95, 0.35),
    ("Old Tam", 2, 5, 0.60, 0.70, 0.65),
    ("Bridgekeeper Odo", 2, 1, 0.45, 0.60, 0.70),
    ("Lady Ysolde Marr", 2, 1, 0.25, 0.55, 0.50),
    ("Fenna Quill", 2, 5, 0.45, 0.85, 0.75),
    ("Jory the Eelcatcher", 2, 2, 0.70, 0.60, 0.30),
    ("Sister Callow", 2, 3, 0.40, 0.35, 0.90),
    ("Nessa Crane", 3, 2, 0.35, 0.65, 0.45),
    ("Captain Vey", 3, 1, 0.10, 0.40, 0.85),
    ("Harbourmaster Orrin Slate", 3, 2, 0.30, 0.50, 0.25),
    ("Widow Brine", 3, 0, 0.55, 0.95, 0.55),
    ("Dax Halloran", 3, 2, 0.40, 0.45, 0.15),
    ("Abbot Merrow", 3, 3, 0.20, 0.30, 0.95),
    ("Ashkan the Firewatcher", 4, 4, 0.25, 0.55, 0.80),
    ("Old Sefa", 4, 4, 0.35, 0.70, 0.60),
    ("Rook Sandor", 4, 2, 0.30, 0.75, 0.45),
    ("Imra the Diviner", 4, 0, 0.85, 0.65, 0.50),
    ("Warden Tesk", 4, 1, 0.20, 0.25, 0.75),
    ("Kallo the Apprentice", 4, 4, 0.80, 0.90, 0.70),
    ("Bram the Wanderer", 1, 0, 0.65, 0.80, 0.55),
    ("Lisbet Dunmore", 1, 5, 0.70, 0.85, 0.80),
    ("Grisk the Bridge Troll", 2, 0, 0.35, 0.20, 0.40),
    ("Moss the Hermit", 2, 0, 0.90, 0.15, 0.85),
    ("Gull", 3, 2, 0.85, 0.95, 0.30),
    ("Deacon Fell", 3, 3, 0.30, 0.45, 0.70),
    ("Zahra the Nomad", 4, 0, 0.40, 0.50, 0.65),
    ("Corporal Dunn", 4, 1, 0.55, 0.60, 0.70),
];

/// (origin NPC index + 1, text, truth): each starts in its NPC's region.
pub const RUMORS: &[(usize, &str, f32)] = &[
    (
        4,
        "Wolves took 3 sheep from the Millbrook pasture, and Hilda the Miller counted 12 of them at the mill.",
        0.6,
    ),
    (
        11,
        "Lady Ysolde Marr pays 40 gold to anyone who keeps quiet about what sank in Mirrormere.",
        0.3,
    ),
    (
        16,
        "The Harbour Syndicate hid 7 crates of Crown silver under the Saltmarsh fish market.",
        0.5,
    ),
    (
        22,
        "The Ember Dunes glowed red for 2 nights; Imra the Diviner says a buried city is waking.",
        0.2,
    ),
];

/// (NPC index + 1, kind, text, importance, subject NPC indexes + 1).
pub const MEMORIES: &[(usize, &str, &str, f32, &[usize])] = &[
    (
        1,
        "saw",
        "Wolves circling the mill after dark, bolder every night.",
        0.7,
        &[],
    ),
    (
        7,
        "heard",
        "A bell ringing under the lake at dusk, where no chapel ever stood.",
        0.6,
        &[],
    ),
    (
        14,
        "heard",
        "Someone in the harbour guard takes Syndicate coin.",
        0.9,
        &[15],
    ),
    (20, "talked", "Promised the guild its money by the new moon.", 0.8, &[]),
];

/// (kind, text, regions).
pub const EVENTS: &[(&str, &str, &[i64])] = &[
    (
        "festival",
        "The Harvest Fair opens in Millbrook: music, cider and a prize for the fattest pig.",
        &[1],
    ),
    (
        "storm",
        "A storm rolls off Mirrormere; boats stay moored and the harbour bells ring.",
        &[2, 3],
    ),
    (
        "bounty",
        "The Crown Wardens post a bounty on smugglers working the harbour.",
        &[3],
    ),
    (
        "omen",
        "Green lights dance over the Ember Dunes three nights running.",
        &[4, 1],
    ),
];

/// (title, description, giver NPC, region, level, gold, xp, items, objectives)
type DemoQuest = (
    &'static str,
    &'static str,
    i64,
    i64,
    u32,
    i64,
    i64,
    &'static [i64],
    &'static [(&'static str, u32)],
);

/// The demo quests. The giver is a 1-based index into [`NPCS`] (the NPC
/// with that id in a fresh world), the region an id of [`REGIONS`].
pub const QUESTS: &[DemoQuest] = &[
    (
        "Wolves at the Mill",
        "The miller's flour is spoiling while wolves circle the mill at night.",
        1,
        1,
        1,
        50,
        120,
        &[4],
        &[("Slay wolves near the mill", 5), ("Report back to Hilda", 1)],
    ),
    (
        "A Letter for the Abbot",
        "Brother Aldo needs a sealed letter carried across the marsh.",
        2,
        1,
        1,
        20,
        60,
        &[],
        &[("Deliver the letter to the abbey", 1)],
    ),
    (
        "Herbs for the Healer",
        "The healer's stores are empty before the fever season.",
        3,
        1,
        2,
        30,
        80,
        &[11],
        &[("Gather moonleaf", 8), ("Gather bitterroot", 4)],
    ),
    (
        "The Drowned Bell",
        "Fishermen hear a bell beneath the lake at dusk.",
        7,
        2,
        4,
        120,
        300,
        &[21],
        &[("Dive at the old pier", 3), ("Recover the bell clapper", 1)],
    ),
    (
        "Toll of the Bridge Troll",
        "The troll under the east bridge has raised his toll again.",
        8,
        2,
        5,
        200,
        450,
        &[],
        &[("Negotiate with the troll", 1), ("Or drive him off", 1)],
    ),
    (
        "Smuggler's Ledger",
        "A ledger could prove who is bribing the harbour guard.",
        13,
        3,
        6,
        150,
        500,
        &[33],
        &[
            ("Search the warehouse", 1),
            ("Copy the ledger", 1),
            ("Hand it to Captain Vey", 1),
        ],
    ),
    (
        "Embers in the Dunes",
        "Something burns in the dunes where nothing should.",
        19,
        4,
        8,
        250,
        800,
        &[41, 42],
        &[("Find the fire's source", 1), ("Quench the embers", 6)],
    ),
    (
        "The Glassmaker's Debt",
        "Old Sefa owes the guild more than sand can pay.",
        20,
        4,
        7,
        90,
        350,
        &[],
        &[("Collect desert glass", 10)],
    ),
];

/// The cells of a demo region: the hexagon of radius [`REGION_RADIUS`]
/// around its centre, in q then r order.
pub fn region_cells(centre: (i32, i32)) -> Vec<(i32, i32)> {
    let mut cells = Vec::new();
    for dq in -REGION_RADIUS..=REGION_RADIUS {
        for dr in (-REGION_RADIUS).max(-dq - REGION_RADIUS)..=REGION_RADIUS.min(-dq + REGION_RADIUS) {
            cells.push((centre.0 + dq, centre.1 + dr));
        }
    }
    cells
}

/// Seeds the demo world through the world, NPC and quest services.
pub async fn seed(
    world_addr: SocketAddr,
    npc_addr: SocketAddr,
    quest_addr: SocketAddr,
    rumor_addr: Option<SocketAddr>,
) -> Result<(), VdmError> {
    let channel = |addr: SocketAddr| {
        vdm_kit::grpc::channel(&format!("http://{addr}"), Duration::from_secs(10))
            .map_err(|e| VdmError::Other(format!("demo seed: {e}")))
    };
    let mut world = WorldServiceClient::new(channel(world_addr)?);
    let mut npcs = NpcServiceClient::new(channel(npc_addr)?);
    let mut quests = QuestServiceClient::new(channel(quest_addr)?);
    let mut created = Counts::default();
    seed_world(&mut world, &mut created).await?;
    let npc_ids = seed_npcs(&mut npcs, &mut created).await?;
    seed_quests(&mut quests, &npc_ids, &mut created).await?;
    if let Some(addr) = rumor_addr {
        seed_rumors(&mut RumorServiceClient::new(channel(addr)?), &npc_ids, &mut created).await?;
    }
    if created.any() {
        tracing::info!(
            regions = created.regions,
            factions = created.factions,
            npcs = created.npcs,
            memories = created.memories,
            events = created.events,
            quests = created.quests,
            rumors = created.rumors,
            "demo world seeded"
        );
    }
    Ok(())
}

/// What a seed run created (a second run creates nothing).
#[derive(Debug, Default)]
struct Counts {
    regions: usize,
    factions: usize,
    npcs: usize,
    memories: usize,
    events: usize,
    quests: usize,
    rumors: usize,
}

impl Counts {
    fn any(&self) -> bool {
        self.regions + self.factions + self.npcs + self.memories + self.events + self.quests + self.rumors > 0
    }
}

fn failed(what: String) -> impl FnOnce(tonic::Status) -> VdmError {
    move |status| VdmError::Other(format!("demo seed: {what}: {}", status.message()))
}

async fn seed_rumors(
    rumors: &mut RumorServiceClient<GrpcChannel>,
    npc_ids: &[i64],
    created: &mut Counts,
) -> Result<(), VdmError> {
    for (i, (npc, text, truth)) in RUMORS.iter().enumerate() {
        let (origin, region_id) = match (npc_ids.get(npc.wrapping_sub(1)), NPCS.get(npc.wrapping_sub(1))) {
            (Some(id), Some(spec)) => (*id, spec.1),
            _ => return Err(VdmError::Other(format!("demo seed: rumor {i}: no demo npc {npc}"))),
        };
        let response = rumors
            .create_rumor(rumor_pb::CreateRumorRequest {
                text: (*text).to_owned(),
                origin_npc_id: origin,
                origin_event_id: 0,
                region_id,
                truth: *truth,
                idempotency_key: format!("demo-rumor-{}", i + 1),
            })
            .await
            .map_err(failed(format!("rumor {i}")))?;
        created.rumors += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

async fn seed_world(world: &mut WorldServiceClient<GrpcChannel>, created: &mut Counts) -> Result<(), VdmError> {
    for (id, name, biome, centre) in REGIONS {
        let region = world_pb::RegionSpec {
            id: *id,
            name: (*name).to_owned(),
            biome: (*biome).to_owned(),
            cells: region_cells(*centre)
                .into_iter()
                .map(|(q, r)| world_pb::Hex { q, r })
                .collect(),
        };
        let response = world
            .upsert_region(world_pb::UpsertRegionRequest { region: Some(region) })
            .await
            .map_err(failed(format!("region {name:?}")))?;
        created.regions += usize::from(response.into_inner().created);
    }
    for (id, name) in FACTIONS {
        let faction = world_pb::Faction {
            id: *id,
            name: (*name).to_owned(),
        };
        let response = world
            .upsert_faction(world_pb::UpsertFactionRequest { faction: Some(faction) })
            .await
            .map_err(failed(format!("faction {name:?}")))?;
        created.factions += usize::from(response.into_inner().created);
    }
    for (a, b, score) in RELATIONS {
        world
            .set_faction_relation(world_pb::SetFactionRelationRequest {
                faction_a: *a,
                faction_b: *b,
                score: *score,
            })
            .await
            .map_err(failed(format!("relation {a}-{b}")))?;
    }
    for (i, (kind, text, regions)) in EVENTS.iter().enumerate() {
        let response = world
            .publish_world_event(world_pb::PublishWorldEventRequest {
                kind: (*kind).to_owned(),
                text: (*text).to_owned(),
                region_ids: regions.to_vec(),
                idempotency_key: format!("demo-event-{i}"),
            })
            .await
            .map_err(failed(format!("event {kind:?}")))?;
        created.events += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

/// Creates the NPCs and their memories; returns the NPCs' ids in [`NPCS`] order.
async fn seed_npcs(npcs: &mut NpcServiceClient<GrpcChannel>, created: &mut Counts) -> Result<Vec<i64>, VdmError> {
    let mut ids = Vec::with_capacity(NPCS.len());
    // Spread each region's NPCs over its cells: slot k stands on cell
    // (5k + 3) mod 19, distinct for k < 19 since 5 and 19 are coprime.
    let mut slots = std::collections::HashMap::<i64, usize>::new();
    for (i, (name, region_id, faction_id, gullibility, talkativeness, honesty)) in NPCS.iter().enumerate() {
        let centre = REGIONS
            .iter()
            .find(|r| r.0 == *region_id)
            .map(|r| r.3)
            .ok_or_else(|| VdmError::Other(format!("demo seed: npc {name:?} names no demo region")))?;
        let cells = region_cells(centre);
        let slot = slots.entry(*region_id).or_default();
        let (q, r) = cells[(*slot * 5 + 3) % cells.len()];
        *slot += 1;
        let request = npc_pb::CreateNpcRequest {
            idempotency_key: format!("demo-npc-{}", i + 1),
            npc: Some(npc_pb::NpcSpec {
                name: (*name).to_owned(),
                region_id: *region_id,
                position: Some(npc_pb::Hex { q, r }),
                faction_id: *faction_id,
                traits: Some(npc_pb::Traits {
                    gullibility: *gullibility,
                    talkativeness: *talkativeness,
                    honesty: *honesty,
                }),
            }),
        };
        let response = npcs
            .create_npc(request)
            .await
            .map_err(failed(format!("npc {name:?}")))?
            .into_inner();
        let npc = response
            .npc
            .ok_or_else(|| VdmError::Other(format!("demo seed: npc {name:?}: no npc in the answer")))?;
        if !response.replayed {
            created.npcs += 1;
        }
        ids.push(npc.id);
    }
    let npc_id = |index: usize| {
        ids.get(index.wrapping_sub(1))
            .copied()
            .ok_or_else(|| VdmError::Other(format!("demo seed: no demo npc {index}")))
    };
    for (i, (npc, kind, text, importance, subjects)) in MEMORIES.iter().enumerate() {
        let request = npc_pb::RecordMemoryRequest {
            npc_id: npc_id(*npc)?,
            kind: (*kind).to_owned(),
            text: (*text).to_owned(),
            subject_ids: subjects.iter().map(|s| npc_id(*s)).collect::<Result<_, _>>()?,
            importance: *importance,
            game_time_ms: None,
            idempotency_key: format!("demo-memory-{i}"),
        };
        let response = npcs
            .record_memory(request)
            .await
            .map_err(failed(format!("memory {i}")))?;
        created.memories += usize::from(!response.into_inner().replayed);
    }
    Ok(ids)
}

async fn seed_quests(
    quests: &mut QuestServiceClient<GrpcChannel>,
    npc_ids: &[i64],
    created: &mut Counts,
) -> Result<(), VdmError> {
    for (i, (title, description, giver, region, level, gold, xp, items, objectives)) in QUESTS.iter().enumerate() {
        let giver_npc_id = usize::try_from(*giver)
            .ok()
            .and_then(|g| npc_ids.get(g.wrapping_sub(1)))
            .copied()
            .ok_or_else(|| VdmError::Other(format!("demo seed: quest {title:?} names no demo npc")))?;
        let request = pb::CreateQuestRequest {
            idempotency_key: format!("demo-quest-{i}"),
            quest: Some(pb::QuestSpec {
                title: (*title).to_owned(),
                description: (*description).to_owned(),
                giver_npc_id,
                region_id: *region,
                level_requirement: *level,
                reward: Some(pb::Reward {
                    gold: *gold,
                    xp: *xp,
                    item_ids: items.to_vec(),
                }),
                objectives: objectives
                    .iter()
                    .map(|(d, n)| pb::ObjectiveSpec {
                        description: (*d).to_owned(),
                        target_count: *n,
                    })
                    .collect(),
            }),
        };
        let response = quests
            .create_quest(request)
            .await
            .map_err(failed(format!("quest {title:?}")))?;
        created.quests += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_world_is_consistent() {
        assert_eq!(region_cells((0, 0)).len(), 19);
        // Every quest's giver is an NPC of the quest's region.
        for quest in QUESTS {
            let giver = NPCS[(quest.2 - 1) as usize];
            assert_eq!(
                giver.1, quest.3,
                "{}: giver {} is in region {}",
                quest.0, giver.0, giver.1
            );
        }
        // No two regions share a cell.
        let mut seen = std::collections::HashSet::new();
        for region in REGIONS {
            for cell in region_cells(region.3) {
                assert!(seen.insert(cell), "{cell:?} is in two regions");
            }
        }
        assert!(NPCS.len() >= 24);
    }
}
