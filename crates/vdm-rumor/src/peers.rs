//! The NPC and world services, as the rumor service needs them: NPC traits
//! and positions, whether a region or a world event exists, and the names of
//! people and places a retelling may swap in. The one place this crate
//! speaks `vdm.npc.v1` and `vdm.world.v1`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Code;
use vdm_kit::ErrorCode;
use vdm_kit::bus::{Event, EventBody, Heard, Subscription};
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::ResourceKind;
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::world::v1 as world_pb;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::domain::{TickNpc, Traits};
use crate::error::{RumorError, RumorResult};

/// How long the names of people and places are reused before asking again.
const NAMES_TTL: Duration = Duration::from_secs(60);
/// How long an NPC read is reused when no change event drops it sooner
/// (the bus is down, or this replica missed the event).
const NPC_TTL: Duration = Duration::from_secs(10);
/// NPCs kept at most; past it the memo starts over.
const NPC_MEMO_MAX: usize = 10_000;

/// An NPC as the rumor service sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NpcInfo {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The region it is in now.
    pub region_id: i64,
    /// Its cell.
    pub q: i32,
    /// Its cell.
    pub r: i32,
    /// Its personality.
    pub traits: Traits,
    /// Its faction, if it has one.
    pub faction_id: Option<i64>,
}

impl NpcInfo {
    /// The NPC as a tick plans with it.
    pub fn tick_npc(&self) -> TickNpc {
        TickNpc {
            id: self.id,
            q: self.q,
            r: self.r,
            traits: self.traits,
        }
    }
}

type Memo<K> = Mutex<HashMap<K, (Instant, Arc<Vec<String>>)>>;

/// Clients of the NPC and world services (cheap to clone).
#[derive(Clone)]
pub struct Peers {
    npc: NpcServiceClient<GrpcChannel>,
    world: WorldServiceClient<GrpcChannel>,
    names: Arc<Memo<i64>>,
    places: Arc<Memo<()>>,
    /// The NPCs this replica read lately. Every talk reads its NPC
    /// (faction, name, traits), and asking the NPC service each time was a
    /// gRPC call and a cache round trip per talk; NPC change events drop
    /// what they name.
    npcs: Arc<vdm_kit::memo::Memo<i64, NpcInfo>>,
}

impl Peers {
    /// Clients over these channels (lazily connecting, or in this process).
    pub fn new(npc: GrpcChannel, world: GrpcChannel) -> Peers {
        Peers {
            npc: NpcServiceClient::new(npc),
            world: WorldServiceClient::new(world),
            names: Arc::new(Mutex::new(HashMap::new())),
            places: Arc::new(Mutex::new(HashMap::new())),
            npcs: Arc::new(vdm_kit::memo::Memo::new(NPC_TTL, NPC_MEMO_MAX)),
        }
    }

    /// One NPC: as read lately, unless a change event dropped it or
    /// [`NPC_TTL`] passed.
    pub async fn npc(&self, id: i64) -> RumorResult<NpcInfo> {
        let load = async { Ok::<_, RumorError>(npc_info(self.fetch_npc(id).await?)) };
        let (npc, source) = self.npcs.get_or_load(id, load).await?;
        metrics::counter!("vdm_rumor_npc_reads_total", "source" => source.label("memo", "npc_service")).increment(1);
        Ok(npc)
    }

    /// Follows `subscription` until `stop`, dropping each NPC a change
    /// event names (every NPC when deliveries were missed).
    pub async fn follow_npc_changes(&self, subscription: Subscription, stop: CancellationToken) {
        subscription
            .follow(stop, |heard| {
                match heard {
                    Heard::Event(event) => match npc_change(&event) {
                        Some(NpcChange::One(id)) => self.forget_npcs(Some(id)),
                        Some(NpcChange::Any) => self.forget_npcs(None),
                        None => {}
                    },
                    Heard::Missed(missed) => {
                        tracing::warn!(
                            missed,
                            "rumor service fell behind the event bus; forgetting every npc read"
                        );
                        self.forget_npcs(None);
                    }
                }
                std::future::ready(())
            })
            .await;
    }

    /// Drops one NPC's read, or every NPC's.
    fn forget_npcs(&self, id: Option<i64>) {
        match id {
            Some(id) => self.npcs.forget(&id),
            None => self.npcs.forget_all(),
        }
    }

    async fn fetch_npc(&self, id: i64) -> RumorResult<npc_pb::Npc> {
        self.npc
            .clone()
            .get_npc(npc_pb::GetNpcRequest { id })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => RumorError::NpcNotFound(id),
                Code::InvalidArgument => RumorError::Invalid(status.message().to_owned()),
                _ => unexpected("npc", status),
            })
            .map(tonic::Response::into_inner)
    }

    /// Two NPCs in one call (teller and listener), or `NpcNotFound` naming
    /// the first unknown one.
    pub async fn npc_pair(&self, a: i64, b: i64) -> RumorResult<(NpcInfo, NpcInfo)> {
        let npcs = self
            .npc
            .clone()
            .batch_get_npcs(npc_pb::BatchGetNpcsRequest { ids: vec![a, b] })
            .await
            .map_err(|status| match status.code() {
                Code::InvalidArgument => RumorError::Invalid(status.message().to_owned()),
                _ => unexpected("npc", status),
            })?
            .into_inner()
            .npcs;
        let find = |id: i64| {
            npcs.iter()
                .find(|n| n.id == id)
                .cloned()
                .map(npc_info)
                .ok_or(RumorError::NpcNotFound(id))
        };
        Ok((find(a)?, find(b)?))
    }

    /// The NPCs now in a region, in id order, at most `max` (pages of 100).
    pub async fn npcs_in_region(&self, region_id: i64, max: u32) -> RumorResult<Vec<NpcInfo>> {
        let mut npcs = Vec::new();
        let mut cursor = String::new();
        while (npcs.len() as u32) < max {
            let page = self
                .npc
                .clone()
                .list_npcs(npc_pb::ListNpcsRequest {
                    region_id: Some(region_id),
                    faction_id: None,
                    limit: (max - npcs.len() as u32).min(100),
                    cursor,
                })
                .await
                .map_err(|status| unexpected("npc", status))?
                .into_inner();
            npcs.extend(page.npcs.into_iter().map(npc_info));
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        Ok(npcs)
    }

    /// Checks that a region exists.
    pub async fn check_region(&self, region_id: i64) -> RumorResult<()> {
        self.world
            .clone()
            .get_region(world_pb::GetRegionRequest { id: region_id })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => RumorError::UnknownRegion(region_id),
                _ => unexpected("world", status),
            })?;
        Ok(())
    }

    /// Checks that a world event exists.
    pub async fn check_event(&self, event_id: i64) -> RumorResult<()> {
        self.world
            .clone()
            .get_world_event(world_pb::GetWorldEventRequest { id: event_id })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => RumorError::UnknownEvent(event_id),
                _ => unexpected("world", status),
            })?;
        Ok(())
    }

    /// The names of the NPCs of a region (reused for a minute).
    pub async fn names_in(&self, region_id: i64) -> RumorResult<Arc<Vec<String>>> {
        if let Some(names) = fresh(&self.names, &region_id) {
            return Ok(names);
        }
        let names: Vec<String> = self
            .npcs_in_region(region_id, 100)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        Ok(remember(&self.names, region_id, names))
    }

    /// Remembers the names of a region's NPCs a tick has just read.
    pub fn learn_names(&self, region_id: i64, npcs: &[NpcInfo]) -> Arc<Vec<String>> {
        remember(
            &self.names,
            region_id,
            npcs.iter().take(100).map(|n| n.name.clone()).collect(),
        )
    }

    /// The names of every region (reused for a minute).
    pub async fn places(&self) -> RumorResult<Arc<Vec<String>>> {
        if let Some(places) = fresh(&self.places, &()) {
            return Ok(places);
        }
        let places: Vec<String> = self
            .world
            .clone()
            .list_regions(world_pb::ListRegionsRequest {})
            .await
            .map_err(|status| unexpected("world", status))?
            .into_inner()
            .regions
            .into_iter()
            .map(|r| r.name)
            .collect();
        Ok(remember(&self.places, (), places))
    }

    /// Every region's id (for the ticker).
    pub async fn region_ids(&self) -> RumorResult<Vec<i64>> {
        Ok(self
            .world
            .clone()
            .list_regions(world_pb::ListRegionsRequest {})
            .await
            .map_err(|status| unexpected("world", status))?
            .into_inner()
            .regions
            .into_iter()
            .map(|r| r.id)
            .collect())
    }
}

/// What an event says about the NPCs this service keeps.
#[derive(Debug, PartialEq, Eq)]
enum NpcChange {
    /// This NPC changed (or moved).
    One(i64),
    /// Some NPC changed, or a kind this build cannot place.
    Any,
}

fn npc_change(event: &Event) -> Option<NpcChange> {
    match event.body.as_ref()? {
        EventBody::ResourceChanged(changed) => match changed.kind() {
            ResourceKind::Npc if changed.id > 0 => Some(NpcChange::One(changed.id)),
            ResourceKind::Npc | ResourceKind::Unspecified => Some(NpcChange::Any),
            ResourceKind::Quest | ResourceKind::Region | ResourceKind::Faction | ResourceKind::Item => None,
        },
        EventBody::NpcMoved(moved) => Some(NpcChange::One(moved.npc_id)),
        _ => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fresh<K: std::hash::Hash + Eq>(memo: &Memo<K>, key: &K) -> Option<Arc<Vec<String>>> {
    let memo = lock(memo);
    memo.get(key)
        .filter(|(at, _)| at.elapsed() < NAMES_TTL)
        .map(|(_, names)| names.clone())
}

fn remember<K: std::hash::Hash + Eq>(memo: &Memo<K>, key: K, names: Vec<String>) -> Arc<Vec<String>> {
    let names = Arc::new(names);
    let mut memo = lock(memo);
    // Bounded: regions are few, but never let the memo grow without end.
    if memo.len() > 10_000 {
        memo.clear();
    }
    memo.insert(key, (Instant::now(), names.clone()));
    names
}

fn npc_info(npc: npc_pb::Npc) -> NpcInfo {
    let position = npc.position.unwrap_or_default();
    let traits = npc.traits.unwrap_or_default();
    NpcInfo {
        id: npc.id,
        name: npc.name,
        region_id: npc.region_id,
        q: position.q,
        r: position.r,
        traits: Traits {
            gullibility: traits.gullibility,
            talkativeness: traits.talkativeness,
            honesty: traits.honesty,
        },
        faction_id: npc.faction_id,
    }
}

/// A peer answer the rumor service cannot turn into a client error.
fn unexpected(peer: &'static str, status: tonic::Status) -> RumorError {
    if ErrorCode::from_grpc(status.code()).is_retryable() {
        RumorError::PeerUnavailable(peer, status)
    } else {
        RumorError::Peer(peer, status)
    }
}

#[cfg(test)]
mod tests {
    use vdm_proto::events::v1::NpcMoved;

    use super::*;

    #[test]
    fn npc_changes_are_read_from_the_bus_events() {
        let changed = Event::resource_changed(ResourceKind::Npc, 4);
        assert_eq!(npc_change(&changed), Some(NpcChange::One(4)));
        let any = Event::resource_changed(ResourceKind::Npc, 0);
        assert_eq!(npc_change(&any), Some(NpcChange::Any));
        let unknown = Event::resource_changed(ResourceKind::Unspecified, 4);
        assert_eq!(npc_change(&unknown), Some(NpcChange::Any));
        let region = Event::resource_changed(ResourceKind::Region, 4);
        assert_eq!(npc_change(&region), None);
        let moved = Event {
            body: Some(EventBody::NpcMoved(NpcMoved {
                npc_id: 7,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(npc_change(&moved), Some(NpcChange::One(7)));
        assert_eq!(npc_change(&Event::default()), None);
    }
}
