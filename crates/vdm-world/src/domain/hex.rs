//! Hex cells in axial coordinates (q, r), with the third cube coordinate
//! s = -q - r implied.

use serde::{Deserialize, Serialize};

/// The largest |q| or |r| of a region's cell; keeps neighbour arithmetic far
/// from overflow and the map to a sane size.
pub const MAX_COORD: i32 = 100_000;

/// One hex cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hex {
    /// Column.
    pub q: i32,
    /// Row.
    pub r: i32,
}

/// The six axial directions, counter-clockwise from east.
const DIRECTIONS: [(i32, i32); 6] = [(1, 0), (1, -1), (0, -1), (-1, 0), (-1, 1), (0, 1)];

impl Hex {
    /// A cell.
    pub fn new(q: i32, r: i32) -> Hex {
        Hex { q, r }
    }

    /// Tells whether both coordinates are within [`MAX_COORD`].
    pub fn in_bounds(self) -> bool {
        (-MAX_COORD..=MAX_COORD).contains(&self.q) && (-MAX_COORD..=MAX_COORD).contains(&self.r)
    }

    /// The six cells around this one (saturating at the i32 range, which
    /// cells within [`MAX_COORD`] never reach).
    pub fn neighbours(self) -> impl Iterator<Item = Hex> {
        DIRECTIONS
            .iter()
            .map(move |(dq, dr)| Hex::new(self.q.saturating_add(*dq), self.r.saturating_add(*dr)))
    }

    /// Steps between two cells.
    pub fn distance(self, other: Hex) -> u32 {
        let dq = i64::from(self.q) - i64::from(other.q);
        let dr = i64::from(self.r) - i64::from(other.r);
        let ds = -dq - dr;
        u32::try_from((dq.abs() + dr.abs() + ds.abs()) / 2).unwrap_or(u32::MAX)
    }

    /// The cells within `radius` steps of this one (a hexagon), in q then r order.
    pub fn hexagon(self, radius: i32) -> Vec<Hex> {
        let mut cells = Vec::new();
        for dq in -radius..=radius {
            for dr in (-radius).max(-dq - radius)..=radius.min(-dq + radius) {
                cells.push(Hex::new(self.q + dq, self.r + dr));
            }
        }
        cells
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.q, self.r)
    }
}

/// The smallest q/r rectangle holding some cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundingBox {
    /// Smallest q.
    pub min_q: i32,
    /// Largest q.
    pub max_q: i32,
    /// Smallest r.
    pub min_r: i32,
    /// Largest r.
    pub max_r: i32,
}

impl BoundingBox {
    /// The box around `cells`, grown by `margin` on every side; `None` for no cells.
    pub fn around(cells: &[Hex], margin: i32) -> Option<BoundingBox> {
        let first = cells.first()?;
        let mut b = BoundingBox {
            min_q: first.q,
            max_q: first.q,
            min_r: first.r,
            max_r: first.r,
        };
        for c in cells {
            b.min_q = b.min_q.min(c.q);
            b.max_q = b.max_q.max(c.q);
            b.min_r = b.min_r.min(c.r);
            b.max_r = b.max_r.max(c.r);
        }
        Some(BoundingBox {
            min_q: b.min_q.saturating_sub(margin),
            max_q: b.max_q.saturating_add(margin),
            min_r: b.min_r.saturating_sub(margin),
            max_r: b.max_r.saturating_add(margin),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let origin = Hex::new(0, 0);
        assert_eq!(origin.neighbours().count(), 6);
        assert!(origin.neighbours().all(|n| n.distance(origin) == 1));
        assert_eq!(Hex::new(5, -3).distance(origin), 5);
        assert_eq!(origin.hexagon(2).len(), 19);
        assert!(origin.hexagon(2).iter().all(|c| c.distance(origin) <= 2));
        let b = BoundingBox::around(&[Hex::new(1, 2), Hex::new(-1, 5)], 1).unwrap();
        assert_eq!((b.min_q, b.max_q, b.min_r, b.max_r), (-2, 2, 1, 6));
        assert!(BoundingBox::around(&[], 1).is_none());
        assert!(!Hex::new(i32::MIN, 0).in_bounds(), "no overflow at the edge of i32");
        assert!(Hex::new(-MAX_COORD, MAX_COORD).in_bounds());
    }
}
