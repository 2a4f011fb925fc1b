//! Field checks shared by the NPC service's inputs, and request fingerprints.
//! The checks themselves are `vdm_kit::validate`'s; this module gives them
//! to the domain under their local names.

pub use vdm_kit::validate::{TextRule, fingerprint, positive_id, text_field, unit_field, word_field};

use crate::error::{NpcError, NpcResult};

pub(crate) fn invalid(message: String) -> NpcError {
    NpcError::Invalid(message)
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn check_idempotency_key(key: Option<&str>) -> NpcResult<()> {
    Ok(vdm_kit::validate::idempotency_key(key)?)
}
