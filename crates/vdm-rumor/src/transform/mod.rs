//! How a retelling changes a rumor's text.
//!
//! A [`Transformer`] turns a batch of [`Ask`]s into texts and never fails:
//! the local one is deterministic and needs no network; the
//! OpenAI-compatible one ([`llm`]) falls back to the local one when its
//! upstream fails, is slow, or answers something unusable. In front of
//! either sits the [`Pipeline`]: a cache (TTL 120 s, keyed by the
//! transformer's name and version and a hash of the ask), single-flight for
//! identical concurrent asks, and batching of distinct asks that arrive
//! within a short window.

pub mod llm;
pub mod local;
mod pipeline;

use serde::Serialize;

pub use llm::LlmClient;
pub use local::LocalTransformer;
pub use pipeline::{Pipeline, Source};

use crate::domain::{Traits, hash_parts};

/// One retelling to transform: everything the new text may depend on. The
/// same ask always gives the same text from the local transformer (and the
/// same cache entry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ask {
    /// The text the teller knows.
    pub text: String,
    /// The teller's personality.
    pub teller: Traits,
    /// The listener's personality.
    pub listener: Traits,
    /// How much this retelling distorts (0..=1).
    pub intensity: f32,
    /// Varies the result.
    pub seed: u64,
    /// Names of people in the world a retelling may swap in.
    pub names: Vec<String>,
    /// Names of places a retelling may swap in.
    pub places: Vec<String>,
}

impl Ask {
    /// A stable hash of every field.
    pub fn digest(&self) -> u64 {
        // A struct of strings and numbers always encodes.
        let bytes = rmp_serde::to_vec(self).unwrap_or_default();
        hash_parts(&[&bytes])
    }
}

/// A transformed text and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// The new text.
    pub text: String,
    /// `local/1`, `llm/<model>`, or `local/1 (fallback)`.
    pub by: String,
}

/// The transformer a rumor service runs.
pub enum Transformer {
    /// Local and deterministic.
    Local(LocalTransformer),
    /// An OpenAI-compatible upstream, falling back to local.
    Llm(Box<LlmClient>),
}

impl Transformer {
    /// Its name and version, part of every cache key (a new version never
    /// serves an old version's texts).
    pub fn id(&self) -> String {
        match self {
            Transformer::Local(_) => format!("local/{}", local::VERSION),
            Transformer::Llm(client) => client.id(),
        }
    }

    /// Transforms a batch, one text per ask in order. Never fails.
    pub async fn transform_batch(&self, asks: &[Ask]) -> Vec<Transformed> {
        match self {
            Transformer::Local(local) => asks.iter().map(|ask| local.transform(ask)).collect(),
            Transformer::Llm(client) => client.transform_batch(asks).await,
        }
    }
}
