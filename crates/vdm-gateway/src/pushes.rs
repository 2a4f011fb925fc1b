//! What a socket push looks like to a client: the JSON type of each push's
//! payload, and the rendering of a bus event (`vdm.events.v1`) into it.
//!
//! Pushes that show a resource a REST route also returns use that route's
//! type (`quest.updated` is a [`PlayerQuestJson`], `world.event` an
//! [`EventJson`], `player.updated` a [`ProfileJson`]); the others have their own types here. Every type is in
//! the OpenAPI document (see [`PUSHES`]), so the socket's contract version,
//! a hash of that document, changes whenever what a client sees changes.

use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};
use vdm_kit::bus::{Event, EventBody};

use crate::routes::players::json::{LevelUpJson, ProfileJson};
use crate::routes::quests::json::PlayerQuestJson;
use crate::routes::world::EventJson;

/// `npc.moved`: an NPC walked to another cell, maybe into another region.
#[derive(Debug, Serialize, ToSchema)]
pub struct NpcMovedJson {
    npc_id: i64,
    /// The region it left (the same as `region_id` when it stayed).
    from_region_id: i64,
    region_id: i64,
    q: i32,
    r: i32,
}

/// `rumor.heard`: the player heard a rumor from an NPC.
#[derive(Debug, Serialize, ToSchema)]
pub struct RumorHeardJson {
    rumor_id: i64,
    variant_id: i64,
    npc_id: i64,
    region_id: i64,
    /// The version of the rumor the player heard.
    text: String,
}

/// `rumor.spread`: a tick spread rumors among a region's NPCs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RumorSpreadJson {
    region_id: i64,
    /// Retellings in this tick.
    tellings: u32,
}

/// Every push a socket may get: its name and the schema of its payload
/// (a component of the OpenAPI document).
pub const PUSHES: &[(&str, &str)] = &[
    ("quest.updated", "PlayerQuestJson"),
    ("world.event", "EventJson"),
    ("npc.moved", "NpcMovedJson"),
    ("rumor.heard", "RumorHeardJson"),
    ("rumor.spread", "RumorSpreadJson"),
    ("player.updated", "ProfileJson"),
    ("player.level_up", "LevelUpJson"),
];

/// The payload schemas of every push, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(components(schemas(
    PlayerQuestJson,
    EventJson,
    NpcMovedJson,
    RumorHeardJson,
    RumorSpreadJson,
    ProfileJson,
    LevelUpJson
)))]
pub struct Schemas;

/// Adds every push to a finished OpenAPI document: `x-vdm-pushes` maps
/// each push name to the schema of its payload.
pub fn describe(document: &mut Value) {
    let pushes: serde_json::Map<String, Value> = PUSHES
        .iter()
        .map(|(name, schema)| {
            let reference = serde_json::json!({ "$ref": format!("#/components/schemas/{schema}") });
            ((*name).to_owned(), reference)
        })
        .collect();
    if let Some(document) = document.as_object_mut() {
        document.insert("x-vdm-pushes".to_owned(), Value::Object(pushes));
    }
}

/// The socket contract version of a finished document: `v1-` and a hash of
/// it. Whatever a client sees changes it (a route, a field, a push); what
/// it does not see (the services' protos) does not.
pub fn contract(document: &[u8]) -> String {
    format!("v1-{}", vdm_kit::hash::Fnv64::default().bytes(document).hex())
}

/// The push a socket gets for `event`: its name and payload. `None` for
/// events no socket gets (between gateways, or of a kind this gateway does
/// not know).
pub fn render(event: &Event) -> Option<(&'static str, Value)> {
    let payload = match event.body.as_ref()? {
        EventBody::QuestUpdated(pq) => to_value::<PlayerQuestJson>(PlayerQuestJson::from(pq.clone())),
        EventBody::WorldEvent(world_event) => to_value::<EventJson>(EventJson::from(world_event.clone())),
        EventBody::NpcMoved(moved) => to_value(NpcMovedJson {
            npc_id: moved.npc_id,
            from_region_id: moved.from_region_id,
            region_id: moved.region_id,
            q: moved.q,
            r: moved.r,
        }),
        EventBody::RumorHeard(heard) => to_value(RumorHeardJson {
            rumor_id: heard.rumor_id,
            variant_id: heard.variant_id,
            npc_id: heard.npc_id,
            region_id: heard.region_id,
            text: heard.text.clone(),
        }),
        EventBody::RumorSpread(spread) => to_value(RumorSpreadJson {
            region_id: spread.region_id,
            tellings: spread.tellings,
        }),
        EventBody::PlayerUpdated(profile) => to_value(ProfileJson::from(profile.clone())),
        EventBody::PlayerLevelUp(up) => to_value(LevelUpJson::from(*up)),
        // Between processes only: session revocations, the changes the
        // edge cache follows, and what NPC replicas tell each other. Not
        // part of the client contract.
        EventBody::SessionRevoked(_) | EventBody::ResourceChanged(_) | EventBody::DispositionChanged(_) => {
            return None;
        }
    }?;
    Some((event.kind(), payload))
}

/// Whether some socket may get `event` (cheap: no rendering).
pub fn is_pushed(event: &Event) -> bool {
    !matches!(
        event.body,
        None | Some(EventBody::SessionRevoked(_) | EventBody::ResourceChanged(_) | EventBody::DispositionChanged(_))
    )
}

fn to_value<T: Serialize>(payload: T) -> Option<Value> {
    serde_json::to_value(payload)
        .inspect_err(|err| tracing::error!(error = %err, "push payload does not serialize"))
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use vdm_proto::events::v1::{NpcMoved, SessionRevoked};

    use super::*;

    #[test]
    fn pushes_render_with_their_names_and_internal_events_do_not() {
        let moved = Event {
            player_id: None,
            region_ids: vec![1, 2],
            body: Some(EventBody::NpcMoved(NpcMoved {
                npc_id: 7,
                from_region_id: 1,
                region_id: 2,
                q: 3,
                r: -1,
            })),
        };
        let (kind, payload) = render(&moved).unwrap();
        assert_eq!(kind, "npc.moved");
        assert_eq!(
            payload,
            serde_json::json!({"npc_id": 7, "from_region_id": 1, "region_id": 2, "q": 3, "r": -1})
        );
        let revoked = Event {
            player_id: None,
            region_ids: Vec::new(),
            body: Some(EventBody::SessionRevoked(SessionRevoked::default())),
        };
        assert!(render(&revoked).is_none());
        assert!(render(&Event::default()).is_none());
        let changed = Event::resource_changed(vdm_proto::events::v1::ResourceKind::Quest, 4);
        assert!(render(&changed).is_none());
        assert!(!is_pushed(&changed));
        assert!(PUSHES.iter().any(|(name, _)| *name == kind));
    }
}
