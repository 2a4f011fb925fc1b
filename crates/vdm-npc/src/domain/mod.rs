//! NPC rules with no IO: validating NPCs, dispositions and memories, which
//! memories a full NPC forgets (pages are `vdm_kit::page`).

mod disposition;
mod memory;
mod npc;
mod text;

pub use disposition::{Disposition, MAX_DELTA, MAX_SCORE, MIN_SCORE, adjusted_score, adjustment_fingerprint};
pub use memory::{Memory, MemoryInput, MemoryRank, NewMemory, memories_to_drop};
pub use npc::{Hex, MAX_COORD, NewNpc, Npc, NpcInput, NpcPatch, NpcPatchInput, Traits};
pub use text::{check_idempotency_key, positive_id};
pub use vdm_kit::page::{DEFAULT_PAGE, MAX_PAGE, Order, Page};
