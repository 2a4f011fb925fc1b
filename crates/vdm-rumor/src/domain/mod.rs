//! The rumor service's rules, without IO.

mod attitude;
mod rng;
mod rumor;
mod tick;

pub use attitude::{Attitude, FRIENDLY_FROM, FRIENDLY_SHARES, HOSTILE_BELOW};
pub use rng::{Rng, hash_parts};
pub use rumor::{
    Holder, Known, MAX_TEXT_CHARS, NewRumor, Origin, Rumor, RumorInput, Traits, Variant, distortion_step,
    retold_distortion, truth_at,
};
pub use tick::{REACH, Telling, TickNpc, plan_tick};
