//! Rumors, variants, knowledge, and how a retelling distorts.

use serde::{Deserialize, Serialize};
use vdm_kit::validate::{Invalid, TextRule, positive_id, text_field, unit_field};

use super::Rng;

/// The longest rumor text, at creation and after any retelling.
pub const MAX_TEXT_CHARS: usize = 500;

/// Where a rumor started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// An NPC made it up or saw it; that NPC knows it from the start.
    Npc(i64),
    /// A world event (`vdm.world.v1`) gave rise to it.
    Event(i64),
}

/// A rumor: where and how it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rumor {
    /// Its id.
    pub id: i64,
    /// The text as it started.
    pub text: String,
    /// Where it started.
    pub origin: Origin,
    /// The region it belongs to.
    pub region_id: i64,
    /// 0..=1: how true it was at the start.
    pub truth: f32,
    /// The first variant.
    pub root_variant_id: i64,
    /// Variants so far, the first included.
    pub variant_count: i64,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
}

/// One telling of a rumor: the text as one listener heard it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Its id.
    pub id: i64,
    /// The rumor.
    pub rumor_id: i64,
    /// The variant it was retold from (`None` for the first).
    pub parent_id: Option<i64>,
    /// Who told it (`None` for the first).
    pub teller_npc_id: Option<i64>,
    /// Who heard it (`None` for the first).
    pub listener: Option<Holder>,
    /// The text as heard.
    pub text: String,
    /// 0..=1, grows with each retelling.
    pub distortion: f32,
    /// The rumor's truth, decayed by distortion.
    pub truth: f32,
    /// What made the text.
    pub transformer: String,
    /// When it was told (Unix ms).
    pub created_at_ms: i64,
}

/// Who knows a rumor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Holder {
    /// An NPC.
    Npc(i64),
    /// A player.
    Player(i64),
}

impl Holder {
    /// The stored kind: `npc` or `player`.
    pub fn kind(self) -> &'static str {
        match self {
            Holder::Npc(_) => "npc",
            Holder::Player(_) => "player",
        }
    }

    /// The NPC's or player's id.
    pub fn id(self) -> i64 {
        match self {
            Holder::Npc(id) | Holder::Player(id) => id,
        }
    }
}

/// A variant someone knows, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The variant.
    pub variant: Variant,
    /// The rumor's region.
    pub region_id: i64,
    /// When they heard it (Unix ms).
    pub since_ms: i64,
}

/// An NPC's personality, each 0..=1 (from the NPC service). Players are
/// heard as [`Traits::PLAYER`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Traits {
    /// How readily it believes and embellishes what it hears.
    pub gullibility: f32,
    /// How readily it passes things on.
    pub talkativeness: f32,
    /// How faithfully it retells.
    pub honesty: f32,
}

impl Traits {
    /// A player as a listener: the middle of every scale.
    pub const PLAYER: Traits = Traits {
        gullibility: 0.5,
        talkativeness: 0.5,
        honesty: 0.5,
    };
}

/// A create request as it arrives.
#[derive(Debug, Clone, Default)]
pub struct RumorInput {
    /// The text.
    pub text: String,
    /// The origin NPC.
    pub origin_npc_id: Option<i64>,
    /// The origin world event.
    pub origin_event_id: Option<i64>,
    /// The region.
    pub region_id: i64,
    /// 0..=1.
    pub truth: f32,
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRumor {
    /// The trimmed text.
    pub text: String,
    /// Where it started.
    pub origin: Origin,
    /// The region.
    pub region_id: i64,
    /// 0..=1.
    pub truth: f32,
}

impl NewRumor {
    /// Validates a create request, naming the field at fault.
    pub fn parse(input: RumorInput) -> Result<NewRumor, Invalid> {
        let text = text_field("text", input.text, TextRule::paragraph(MAX_TEXT_CHARS))?;
        let origin = match (input.origin_npc_id, input.origin_event_id) {
            (None, None) => return Err(Invalid("give one of origin_npc_id and origin_event_id".to_owned())),
            (Some(npc), None) => {
                positive_id("origin_npc_id", npc)?;
                Origin::Npc(npc)
            }
            (None, Some(event)) => {
                positive_id("origin_event_id", event)?;
                Origin::Event(event)
            }
            (Some(_), Some(_)) => {
                return Err(Invalid("give only one of origin_npc_id and origin_event_id".to_owned()));
            }
        };
        positive_id("region_id", input.region_id)?;
        Ok(NewRumor {
            text,
            origin,
            region_id: input.region_id,
            truth: unit_field("truth", input.truth)?,
        })
    }

    /// The fingerprint an idempotency key is checked against.
    pub fn fingerprint(&self) -> String {
        let (npc, event) = match self.origin {
            Origin::Npc(id) => (id, 0),
            Origin::Event(id) => (0, id),
        };
        vdm_kit::validate::fingerprint(
            &[&self.text],
            &[npc, event, self.region_id, self.truth.to_bits().into()],
        )
    }
}

/// How much one retelling adds to the distortion: dishonest tellers and
/// gullible listeners add more; `rng` varies it by ±50 %.
pub fn distortion_step(teller: Traits, listener: Traits, rng: &mut Rng) -> f32 {
    let base = 0.04 + 0.22 * (1.0 - teller.honesty) + 0.14 * listener.gullibility;
    (base * (0.5 + rng.unit())).clamp(0.0, 1.0)
}

/// The distortion after a retelling with `step`, capped at 1.
pub fn retold_distortion(parent: f32, step: f32) -> f32 {
    (parent + step).clamp(0.0, 1.0)
}

/// The truth of a variant: the rumor's truth decayed by its distortion.
pub fn truth_at(rumor_truth: f32, distortion: f32) -> f32 {
    (rumor_truth * (1.0 - distortion)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RumorInput {
        RumorInput {
            text: " The bridge at Ashford fell ".into(),
            origin_npc_id: Some(3),
            origin_event_id: None,
            region_id: 1,
            truth: 0.8,
        }
    }

    #[test]
    fn parse_names_the_field() {
        let ok = NewRumor::parse(input()).unwrap();
        assert_eq!(ok.text, "The bridge at Ashford fell");
        assert_eq!(ok.origin, Origin::Npc(3));
        type Change = fn(&mut RumorInput);
        let cases: [(Change, &str); 6] = [
            (|i| i.text = " ".into(), "text"),
            (|i| i.origin_npc_id = None, "origin"),
            (|i| i.origin_event_id = Some(4), "only one"),
            (|i| i.origin_npc_id = Some(-2), "origin_npc_id"),
            (|i| i.region_id = 0, "region_id"),
            (|i| i.truth = 1.5, "truth"),
        ];
        for (change, field) in cases {
            let mut bad = input();
            change(&mut bad);
            let err = NewRumor::parse(bad).unwrap_err();
            assert!(err.0.contains(field), "{} should name {field}", err.0);
        }
        let mut nan = input();
        nan.truth = f32::NAN;
        assert!(NewRumor::parse(nan).is_err());
    }

    #[test]
    fn dishonest_tellers_distort_more_and_truth_decays() {
        let honest = Traits {
            honesty: 1.0,
            ..Traits::PLAYER
        };
        let liar = Traits {
            honesty: 0.0,
            ..Traits::PLAYER
        };
        let a = distortion_step(honest, Traits::PLAYER, &mut Rng::new(1));
        let b = distortion_step(liar, Traits::PLAYER, &mut Rng::new(1));
        assert!(b > a);
        assert_eq!(retold_distortion(0.9, 0.5), 1.0);
        assert!(truth_at(0.8, 0.5) < 0.8);
        assert_eq!(truth_at(0.8, 1.0), 0.0);
    }
}
