//! Regions: named areas of the map, each owning a set of hex cells. Two
//! regions are neighbours when a cell of one touches a cell of the other.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::hex::{Hex, MAX_COORD};
use super::text::{TextRule, invalid, positive_id, text_field, word_field};
use crate::error::WorldResult;

/// Most cells one region may own.
pub const MAX_CELLS: usize = 4_096;

/// A stored region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// The region's id, chosen by its author.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// A lowercase word (forest, lake, ...).
    pub biome: String,
    /// The cells it owns, in q then r order.
    pub cells: Vec<Hex>,
    /// Regions that touch it, ascending.
    pub neighbor_ids: Vec<i64>,
    /// When it last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// A region as its author submits it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RegionInput {
    /// See [`Region::id`].
    pub id: i64,
    /// See [`Region::name`].
    pub name: String,
    /// See [`Region::biome`].
    pub biome: String,
    /// See [`Region::cells`].
    pub cells: Vec<Hex>,
}

/// A validated region, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegion {
    /// See [`Region::id`].
    pub id: i64,
    /// See [`Region::name`].
    pub name: String,
    /// See [`Region::biome`].
    pub biome: String,
    /// Distinct cells in q then r order.
    pub cells: Vec<Hex>,
}

impl NewRegion {
    /// Validates a submitted region, naming the first field at fault.
    pub fn parse(input: RegionInput) -> WorldResult<NewRegion> {
        positive_id("id", input.id)?;
        let name = text_field("name", input.name, TextRule::line(100))?;
        let biome = word_field("biome", &input.biome)?;
        if input.cells.is_empty() {
            return Err(invalid("cells must hold at least one cell".to_owned()));
        }
        if input.cells.len() > MAX_CELLS {
            return Err(invalid(format!("cells may hold at most {MAX_CELLS} cells")));
        }
        if let Some(far) = input.cells.iter().find(|c| !c.in_bounds()) {
            return Err(invalid(format!(
                "cells: {far} is off the map (|q| and |r| are at most {MAX_COORD})"
            )));
        }
        let mut seen = HashSet::with_capacity(input.cells.len());
        if let Some(twice) = input.cells.iter().find(|c| !seen.insert(**c)) {
            return Err(invalid(format!("cells holds {twice} twice")));
        }
        let mut cells = input.cells;
        cells.sort();
        Ok(NewRegion {
            id: input.id,
            name,
            biome,
            cells,
        })
    }
}

/// The regions touching `own` (the cells of region `own_id`), given the
/// owners of (at least) the cells around it; ascending, without `own_id`.
pub fn neighbor_ids(own_id: i64, own: &[Hex], owners: &HashMap<Hex, i64>) -> Vec<i64> {
    let mut ids = BTreeSet::new();
    for cell in own {
        for next in cell.neighbours() {
            if let Some(owner) = owners.get(&next)
                && *owner != own_id
            {
                ids.insert(*owner);
            }
        }
    }
    ids.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RegionInput {
        RegionInput {
            id: 1,
            name: " Millbrook Vale ".into(),
            biome: "farmland".into(),
            cells: vec![Hex::new(1, 0), Hex::new(0, 0)],
        }
    }

    #[test]
    fn accepts_sorts_and_trims() {
        let region = NewRegion::parse(input()).unwrap();
        assert_eq!(region.name, "Millbrook Vale");
        assert_eq!(region.cells, vec![Hex::new(0, 0), Hex::new(1, 0)]);
    }

    #[test]
    fn names_the_field_at_fault() {
        type Mutation = fn(&mut RegionInput);
        let cases: Vec<(Mutation, &str)> = vec![
            (|i| i.id = 0, "id"),
            (|i| i.name = "  ".into(), "name"),
            (|i| i.biome = "Deep Forest".into(), "biome"),
            (|i| i.cells.clear(), "cells"),
            (|i| i.cells.push(Hex::new(0, 0)), "twice"),
            (|i| i.cells.push(Hex::new(MAX_COORD + 1, 0)), "off the map"),
        ];
        for (mutate, needle) in cases {
            let mut bad = input();
            mutate(&mut bad);
            let message = NewRegion::parse(bad).unwrap_err().to_string();
            assert!(message.contains(needle), "{message:?} should name {needle}");
        }
    }

    #[test]
    fn neighbours_touch_by_a_cell() {
        let own = Hex::new(0, 0).hexagon(1);
        let owners = HashMap::from([
            (Hex::new(2, 0), 2),
            (Hex::new(3, 0), 3),
            (Hex::new(0, -2), 4),
            (Hex::new(0, 0), 1),
        ]);
        assert_eq!(neighbor_ids(1, &own, &owners), vec![2, 4]);
    }
}
