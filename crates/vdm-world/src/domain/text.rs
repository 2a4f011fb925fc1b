//! Field checks shared by the world's inputs, and request fingerprints.
//! The checks themselves are `vdm_kit::validate`'s; this module gives them
//! to the domain under their local names.

pub use vdm_kit::validate::{TextRule, fingerprint, positive_id, text_field, word_field};

use crate::error::WorldError;

pub(crate) fn invalid(message: String) -> WorldError {
    WorldError::Invalid(message)
}
