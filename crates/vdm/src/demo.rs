//! The demo world the embedded default seeds on first start, through the
//! services' own gRPC APIs. Every create carries a fixed idempotency key,
//! so seeding again on a later start creates nothing.

use std::net::SocketAddr;

use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;

use crate::VdmError;

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

/// The demo quests. Regions 1-4 and NPCs 1-24 are the demo world's.
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

/// Creates the demo quests through the quest service at `quest_addr`.
pub async fn seed(quest_addr: SocketAddr) -> Result<(), VdmError> {
    let channel = vdm_kit::grpc::channel(&format!("http://{quest_addr}"), std::time::Duration::from_secs(10))
        .map_err(|e| VdmError::Other(format!("demo seed: {e}")))?;
    let mut client = QuestServiceClient::new(channel);
    let mut created = 0;
    for (i, (title, description, giver, region, level, gold, xp, items, objectives)) in QUESTS.iter().enumerate() {
        let request = pb::CreateQuestRequest {
            idempotency_key: format!("demo-quest-{i}"),
            quest: Some(pb::QuestSpec {
                title: (*title).to_owned(),
                description: (*description).to_owned(),
                giver_npc_id: *giver,
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
        let response = client
            .create_quest(request)
            .await
            .map_err(|status| VdmError::Other(format!("demo seed: quest {title:?}: {}", status.message())))?;
        if !response.into_inner().replayed {
            created += 1;
        }
    }
    if created > 0 {
        tracing::info!(quests = created, "demo world seeded");
    }
    Ok(())
}
