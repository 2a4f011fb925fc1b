//! NPC rules with no IO: validating NPCs, dispositions and memories, which
//! memories a full NPC forgets, and pagination cursors.

mod cursor;
mod disposition;
mod memory;
mod npc;
mod text;

pub use cursor::{DEFAULT_PAGE, MAX_PAGE, Order, Page};
pub use disposition::{Disposition, MAX_DELTA, MAX_SCORE, MIN_SCORE, adjusted_score};
pub use memory::{Memory, MemoryInput, MemoryRank, NewMemory, memories_to_drop};
pub use npc::{Hex, MAX_COORD, NewNpc, Npc, NpcInput, Traits};
pub use text::{check_idempotency_key, positive_id};
