//! Player rules with no IO: display names and the level curve, catalog
//! items, changes of balances (and the ledger rows they make), session
//! rotation outcomes.

mod account;
mod change;
mod item;

pub use account::{
    DisplayName, LevelCurve, MAX_LEVELS, NAME_MAX_CHARS, NAME_MIN_CHARS, Profile, Revocation, Rotation, device_id,
    session_id,
};
pub use change::{
    Amounts, Applied, Balances, Change, Direction, LedgerEntry, LedgerKind, MAX_AMOUNT, NewEntry, Outcome, Standing,
};
pub use item::{Item, ItemInput, MAX_STACK_LIMIT, NewItem, Rarity};
pub use vdm_kit::page::{Order, Page};
pub use vdm_kit::validate::positive_id;
