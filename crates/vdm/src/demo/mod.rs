//! The demo world the embedded default seeds on first start, through the
//! services' own gRPC APIs: four regions of hex cells, five factions and
//! their relations, 32 NPCs with traits (the first 24 give the quests), a few
//! memories and world events, ten quests, four rumors for the NPCs
//! to spread, and the eight catalog items the quests reward. Regions,
//! factions and items are upserted by id and relations set to fixed scores;
//! every create carries a fixed idempotency key. So seeding again on a
//! later start creates nothing.
//!
//! The world is data in the format of [`crate::content`]
//! (`content/demo-world.json`, compiled in).
//!
//! - [`seed`]: creates it through the services; [`seed_items`] writes the
//!   item catalog through the player service.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use vdm_kit::grpc::GrpcChannel;
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::player::v1 as player_pb;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;
use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_proto::rumor::v1 as rumor_pb;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;
use vdm_proto::world::v1 as world_pb;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::VdmError;
pub use crate::content::format::{DEMO_WORLD_JSON, World as DemoWorld};

/// The demo world compiled into the binary ([`DEMO_WORLD_JSON`]), parsed
/// once; an error when the file is bad, which a unit test rules out.
pub fn world() -> Result<&'static DemoWorld, VdmError> {
    static WORLD: LazyLock<Result<DemoWorld, String>> =
        LazyLock::new(|| DemoWorld::parse("content/demo-world.json", DEMO_WORLD_JSON).map_err(|e| e.to_string()));
    WORLD.as_ref().map_err(|e| VdmError::Other(e.clone()))
}

/// Seeds the demo world through the world, NPC and quest services.
pub async fn seed(
    world_addr: SocketAddr,
    npc_addr: SocketAddr,
    quest_addr: SocketAddr,
    rumor_addr: Option<SocketAddr>,
) -> Result<(), VdmError> {
    let demo = world()?;
    let channel = |addr: SocketAddr| {
        vdm_kit::grpc::channel(&format!("http://{addr}"), Duration::from_secs(10))
            .map_err(|e| VdmError::Other(format!("demo seed: {e}")))
    };
    let mut world = WorldServiceClient::new(channel(world_addr)?);
    let mut npcs = NpcServiceClient::new(channel(npc_addr)?);
    let mut quests = QuestServiceClient::new(channel(quest_addr)?);
    let mut created = Counts::default();
    seed_world(demo, &mut world, &mut created).await?;
    let npc_ids = seed_npcs(demo, &mut npcs, &mut created).await?;
    seed_quests(demo, &mut quests, &npc_ids, &mut created).await?;
    if let Some(addr) = rumor_addr {
        let mut rumors = RumorServiceClient::new(channel(addr)?);
        seed_rumors(demo, &mut rumors, &npc_ids, &mut created).await?;
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

/// Writes the demo item catalog through the player service: an item
/// missing or different is put, one as the file has it is left alone.
pub async fn seed_items(player_addr: SocketAddr) -> Result<(), VdmError> {
    let demo = world()?;
    let channel = vdm_kit::grpc::channel(&format!("http://{player_addr}"), Duration::from_secs(10))
        .map_err(|e| VdmError::Other(format!("demo seed: {e}")))?;
    let mut players = PlayerServiceClient::new(channel);
    let mut written = 0;
    for item in &demo.items {
        let wanted = player_pb::Item {
            id: item.id,
            key: item.key.clone(),
            name: item.name.clone(),
            kind: item.kind.clone(),
            rarity: item.rarity.clone(),
            max_stack: item.max_stack,
            tradeable: item.tradeable,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let current = match players.get_item(player_pb::GetItemRequest { id: item.id }).await {
            Ok(found) => Some(found.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(status) => return Err(failed(format!("item {}", item.id))(status)),
        };
        let same = current.is_some_and(|current| {
            player_pb::Item {
                created_at_ms: 0,
                updated_at_ms: 0,
                ..current
            } == wanted
        });
        if same {
            continue;
        }
        players
            .put_item(player_pb::PutItemRequest { item: Some(wanted) })
            .await
            .map_err(failed(format!("item {}", item.id)))?;
        written += 1;
    }
    if written > 0 {
        tracing::info!(items = written, "demo items written");
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

/// The id the NPC service gave the demo NPC called `name`.
fn npc_id(demo: &DemoWorld, npc_ids: &[i64], name: &str) -> Result<i64, VdmError> {
    demo.npc_index(name)
        .and_then(|i| npc_ids.get(i))
        .copied()
        .ok_or_else(|| VdmError::Other(format!("demo seed: no demo npc {name:?}")))
}

async fn seed_rumors(
    demo: &DemoWorld,
    rumors: &mut RumorServiceClient<GrpcChannel>,
    npc_ids: &[i64],
    created: &mut Counts,
) -> Result<(), VdmError> {
    for (i, rumor) in demo.rumors.iter().enumerate() {
        let origin = npc_id(demo, npc_ids, &rumor.origin)?;
        let region_id = demo
            .npc_index(&rumor.origin)
            .and_then(|n| demo.npcs.get(n))
            .map(|npc| npc.region)
            .ok_or_else(|| VdmError::Other(format!("demo seed: rumor {i}: no demo npc {:?}", rumor.origin)))?;
        let response = rumors
            .create_rumor(rumor_pb::CreateRumorRequest {
                text: rumor.text.clone(),
                origin_npc_id: Some(origin),
                origin_event_id: None,
                region_id,
                truth: rumor.truth,
                idempotency_key: format!("demo-rumor-{}", i + 1),
            })
            .await
            .map_err(failed(format!("rumor {i}")))?;
        created.rumors += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

async fn seed_world(
    demo: &DemoWorld,
    world: &mut WorldServiceClient<GrpcChannel>,
    created: &mut Counts,
) -> Result<(), VdmError> {
    for region in &demo.regions {
        let spec = world_pb::RegionSpec {
            id: region.id,
            name: region.name.clone(),
            biome: region.biome.clone(),
            cells: region
                .cells()
                .into_iter()
                .map(|c| world_pb::Hex { q: c.q, r: c.r })
                .collect(),
        };
        let response = world
            .upsert_region(world_pb::UpsertRegionRequest { region: Some(spec) })
            .await
            .map_err(failed(format!("region {:?}", region.name)))?;
        created.regions += usize::from(response.into_inner().created);
    }
    for faction in &demo.factions {
        let spec = world_pb::Faction {
            id: faction.id,
            name: faction.name.clone(),
        };
        let response = world
            .upsert_faction(world_pb::UpsertFactionRequest { faction: Some(spec) })
            .await
            .map_err(failed(format!("faction {:?}", faction.name)))?;
        created.factions += usize::from(response.into_inner().created);
    }
    for relation in &demo.relations {
        world
            .set_faction_relation(world_pb::SetFactionRelationRequest {
                faction_a: relation.a,
                faction_b: relation.b,
                score: relation.score,
            })
            .await
            .map_err(failed(format!("relation {}-{}", relation.a, relation.b)))?;
    }
    for (i, event) in demo.events.iter().enumerate() {
        let response = world
            .publish_world_event(world_pb::PublishWorldEventRequest {
                kind: event.kind.clone(),
                text: event.text.clone(),
                region_ids: event.regions.clone(),
                idempotency_key: format!("demo-event-{i}"),
            })
            .await
            .map_err(failed(format!("event {:?}", event.kind)))?;
        created.events += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

/// Creates the NPCs and their memories; returns the NPCs' ids in
/// [`DemoWorld::npcs`] order.
async fn seed_npcs(
    demo: &DemoWorld,
    npcs: &mut NpcServiceClient<GrpcChannel>,
    created: &mut Counts,
) -> Result<Vec<i64>, VdmError> {
    let mut ids = Vec::with_capacity(demo.npcs.len());
    for (i, spec) in demo.npcs.iter().enumerate() {
        let name = &spec.name;
        let position = demo
            .npc_position(i)
            .ok_or_else(|| VdmError::Other(format!("demo seed: npc {name:?} names no demo region")))?;
        let request = npc_pb::CreateNpcRequest {
            idempotency_key: format!("demo-npc-{}", i + 1),
            npc: Some(npc_pb::NpcSpec {
                name: name.clone(),
                region_id: spec.region,
                position: Some(npc_pb::Hex {
                    q: position.q,
                    r: position.r,
                }),
                faction_id: spec.faction,
                traits: Some(npc_pb::Traits {
                    gullibility: spec.traits.gullibility,
                    talkativeness: spec.traits.talkativeness,
                    honesty: spec.traits.honesty,
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
    for (i, memory) in demo.memories.iter().enumerate() {
        let request = npc_pb::RecordMemoryRequest {
            npc_id: npc_id(demo, &ids, &memory.npc)?,
            kind: memory.kind.clone(),
            text: memory.text.clone(),
            subject_ids: memory
                .subjects
                .iter()
                .map(|s| npc_id(demo, &ids, s))
                .collect::<Result<_, _>>()?,
            importance: memory.importance,
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
    demo: &DemoWorld,
    quests: &mut QuestServiceClient<GrpcChannel>,
    npc_ids: &[i64],
    created: &mut Counts,
) -> Result<(), VdmError> {
    for (i, quest) in demo.quests.iter().enumerate() {
        let request = pb::CreateQuestRequest {
            idempotency_key: format!("demo-quest-{i}"),
            quest: Some(pb::QuestSpec {
                title: quest.title.clone(),
                description: quest.description.clone(),
                giver_npc_id: npc_id(demo, npc_ids, &quest.giver)?,
                region_id: quest.region,
                level_requirement: quest.level_requirement,
                reward: Some(pb::Reward {
                    gold: quest.reward.gold,
                    xp: quest.reward.xp,
                    item_ids: quest.reward.item_ids.clone(),
                    standing: quest.reward.standing,
                    disposition: quest.reward.disposition,
                }),
                objectives: quest
                    .objectives
                    .iter()
                    .map(|o| pb::ObjectiveSpec {
                        description: o.description.clone(),
                        target_count: o.target_count,
                    })
                    .collect(),
            }),
        };
        let response = quests
            .create_quest(request)
            .await
            .map_err(failed(format!("quest {:?}", quest.title)))?;
        created.quests += usize::from(!response.into_inner().replayed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_embedded_demo_world_parses() {
        let demo = world().unwrap();
        assert_eq!(demo.regions.len(), 4);
        assert_eq!(demo.factions.len(), 5);
        assert_eq!(demo.relations.len(), 9);
        assert_eq!(demo.npcs.len(), 32);
        assert_eq!(demo.memories.len(), 4);
        assert_eq!(demo.events.len(), 4);
        assert_eq!(demo.quests.len(), 10);
        assert_eq!(demo.rumors.len(), 4);
        assert_eq!(demo.items.len(), 8);
        assert_eq!(demo.regions[0].name, "Millbrook Vale");
        assert_eq!(demo.npcs[0].name, "Hilda the Miller");
    }

    #[test]
    fn demo_world_is_consistent() {
        let demo = world().unwrap();
        for region in &demo.regions {
            assert_eq!(region.cells().len(), 19, "{}", region.name);
        }
        // Every quest's giver is an NPC of the quest's region.
        for quest in &demo.quests {
            let giver = &demo.npcs[demo.npc_index(&quest.giver).unwrap()];
            assert_eq!(
                giver.region, quest.region,
                "{}: giver {} is in region {}",
                quest.title, giver.name, giver.region
            );
        }
        // No two regions share a cell.
        let mut seen = HashSet::new();
        for region in &demo.regions {
            for cell in region.cells() {
                assert!(seen.insert(cell), "{cell:?} is in two regions");
            }
        }
        assert!(demo.npcs.len() >= 24);
    }
}
