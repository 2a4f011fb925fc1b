//! World rules with no IO: hex geometry, region, faction and event
//! validation, relation scores, the clock, pagination cursors.

mod clock;
mod event;
mod faction;
mod hex;
mod region;
mod text;

pub use clock::{Clock, MAX_CLOCK_RATE, START_GAME_MS, WorldTime};
pub use event::{EventInput, NewEvent, WorldEvent};
pub use faction::{
    Faction, FactionRelation, MAX_DELTA, MAX_SCORE, MIN_SCORE, adjusted_score, all_pairs, check_score, pair,
    parse_faction,
};
pub use hex::{BoundingBox, Hex, MAX_COORD};
pub use region::{MAX_CELLS, NewRegion, Region, RegionInput, neighbor_ids};
pub use text::{fingerprint, positive_id};
pub use vdm_kit::page::{DEFAULT_PAGE, MAX_PAGE, Page};
pub use vdm_kit::validate::positive_filter;
