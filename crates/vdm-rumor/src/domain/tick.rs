//! Who tells whom in one spreading tick of a region: pure planning over the
//! NPCs and what they know, so the tick's IO is a fixed number of queries.

use std::collections::{HashMap, HashSet};

use super::{Rng, Traits};

/// How far (in hexes) a rumor travels in one telling.
pub const REACH: i32 = 3;

/// An NPC of the region, as a tick sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickNpc {
    /// Its id.
    pub id: i64,
    /// Its cell (axial q).
    pub q: i32,
    /// Its cell (axial r).
    pub r: i32,
    /// Its personality.
    pub traits: Traits,
}

/// One retelling a tick makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Telling {
    /// Who tells.
    pub teller: i64,
    /// Who hears.
    pub listener: i64,
    /// The rumor.
    pub rumor_id: i64,
    /// The teller's variant, which the listener's is retold from.
    pub parent_variant_id: i64,
}

fn hex_distance(a: &TickNpc, b: &TickNpc) -> i32 {
    let (dq, dr) = (a.q - b.q, a.r - b.r);
    (dq.abs() + dr.abs() + (dq + dr).abs()) / 2
}

/// Plans one tick: each NPC that knows something (in id order) speaks with
/// probability equal to its talkativeness, and tells one rumor it knows to
/// its nearest neighbour within [`REACH`] hexes who does not know it yet
/// (ties: lower id). `known` maps an NPC to the (rumor, variant) pairs it
/// knows. At most `max_tellings`; a listener learns a rumor at most once.
/// The same inputs and seed give the same plan.
pub fn plan_tick(
    npcs: &[TickNpc],
    known: &HashMap<i64, Vec<(i64, i64)>>,
    max_tellings: usize,
    seed: u64,
) -> Vec<Telling> {
    let mut rng = Rng::new(seed);
    let mut knows: HashSet<(i64, i64)> = known
        .iter()
        .flat_map(|(npc, pairs)| pairs.iter().map(move |(rumor, _)| (*npc, *rumor)))
        .collect();
    let mut by_cell: HashMap<(i32, i32), Vec<usize>> = HashMap::new();
    for (i, npc) in npcs.iter().enumerate() {
        by_cell.entry((npc.q, npc.r)).or_default().push(i);
    }
    let mut order: Vec<&TickNpc> = npcs.iter().filter(|n| known.contains_key(&n.id)).collect();
    order.sort_by_key(|n| n.id);

    let mut plan = Vec::new();
    for teller in order {
        if plan.len() >= max_tellings {
            break;
        }
        if !rng.chance(teller.traits.talkativeness) {
            continue;
        }
        let Some(pairs) = known.get(&teller.id).filter(|p| !p.is_empty()) else {
            continue;
        };
        // Start from a random rumor it knows, and fall through to the next
        // when nobody near still needs to hear that one.
        let start = rng.index(pairs.len());
        let neighbours = neighbours_of(teller, npcs, &by_cell);
        'rumors: for k in 0..pairs.len() {
            let (rumor_id, variant_id) = pairs[(start + k) % pairs.len()];
            for &listener in &neighbours {
                if !knows.contains(&(listener, rumor_id)) {
                    knows.insert((listener, rumor_id));
                    plan.push(Telling {
                        teller: teller.id,
                        listener,
                        rumor_id,
                        parent_variant_id: variant_id,
                    });
                    break 'rumors;
                }
            }
        }
    }
    plan
}

/// The other NPCs within [`REACH`] of `npc`, nearest first, then by id.
fn neighbours_of(npc: &TickNpc, npcs: &[TickNpc], by_cell: &HashMap<(i32, i32), Vec<usize>>) -> Vec<i64> {
    let mut near: Vec<(i32, i64)> = Vec::new();
    for dq in -REACH..=REACH {
        for dr in -REACH..=REACH {
            if let Some(indexes) = by_cell.get(&(npc.q + dq, npc.r + dr)) {
                for &i in indexes {
                    let other = &npcs[i];
                    let distance = hex_distance(npc, other);
                    if other.id != npc.id && distance <= REACH {
                        near.push((distance, other.id));
                    }
                }
            }
        }
    }
    near.sort_unstable();
    near.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npc(id: i64, q: i32, talkativeness: f32) -> TickNpc {
        TickNpc {
            id,
            q,
            r: 0,
            traits: Traits {
                talkativeness,
                ..Traits::PLAYER
            },
        }
    }

    #[test]
    fn talkers_tell_their_nearest_neighbour_once() {
        let npcs = [npc(1, 0, 1.0), npc(2, 1, 1.0), npc(3, 2, 1.0), npc(4, 10, 1.0)];
        let known = HashMap::from([(1, vec![(7, 70)])]);
        let plan = plan_tick(&npcs, &known, 10, 1);
        assert_eq!(
            plan,
            vec![Telling {
                teller: 1,
                listener: 2,
                rumor_id: 7,
                parent_variant_id: 70
            }]
        );
        // Two knowers next to one listener: it hears the rumor once.
        let known = HashMap::from([(1, vec![(7, 70)]), (3, vec![(7, 71)])]);
        let plan = plan_tick(&npcs, &known, 10, 1);
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert_eq!((plan[0].teller, plan[0].listener), (1, 2));
    }

    #[test]
    fn silent_npcs_and_far_npcs_hear_nothing_and_the_cap_holds() {
        let npcs = [npc(1, 0, 0.0), npc(2, 1, 1.0), npc(3, 9, 1.0)];
        let known = HashMap::from([(1, vec![(7, 70)])]);
        assert!(plan_tick(&npcs, &known, 10, 1).is_empty());
        let known = HashMap::from([(3, vec![(7, 70)])]);
        assert!(plan_tick(&npcs, &known, 10, 1).is_empty(), "nobody within reach of 3");
        let many: Vec<TickNpc> = (1..=50).map(|i| npc(i, i as i32, 1.0)).collect();
        let known: HashMap<i64, Vec<(i64, i64)>> = (1..=50).map(|i| (i, vec![(i, i * 10)])).collect();
        assert_eq!(plan_tick(&many, &known, 5, 3).len(), 5);
        assert_eq!(plan_tick(&many, &known, 500, 3), plan_tick(&many, &known, 500, 3));
    }
}
