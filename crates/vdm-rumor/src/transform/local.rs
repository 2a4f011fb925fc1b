//! The local transformer: deterministic, no network. A retelling
//! exaggerates numbers, swaps names and places for others from the world,
//! and hedges (a sceptical listener) or embellishes (a gullible one); how
//! much depends on the ask's intensity and the listener's traits, and every
//! choice comes from a random source seeded by the ask itself.

use super::{Ask, Transformed};
use crate::domain::{MAX_TEXT_CHARS, Rng};

/// Bumped whenever the output for a given ask changes (cache keys carry it).
pub const VERSION: u32 = 1;

const HEDGES: [&str; 5] = [
    "I heard that ",
    "Word is, ",
    "Someone said ",
    "Rumour has it that ",
    "They say ",
];

const EMBELLISHMENTS: [&str; 5] = [
    " And that's not the half of it.",
    " Everyone's talking about it.",
    " It was worse than anyone admits.",
    " I swear it's true.",
    " Mark my words, there's more to come.",
];

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalTransformer;

impl LocalTransformer {
    /// The name results carry.
    pub fn id() -> String {
        format!("local/{VERSION}")
    }

    /// Retells `ask.text`.
    pub fn transform(&self, ask: &Ask) -> Transformed {
        Transformed {
            text: retell(ask),
            by: Self::id(),
        }
    }
}

fn retell(ask: &Ask) -> String {
    let mut rng = Rng::new(ask.digest());
    let intensity = ask.intensity.clamp(0.0, 1.0);
    let gullibility = ask.listener.gullibility.clamp(0.0, 1.0);

    // Earlier retellings' hedges and embellishments go, so they never pile up.
    let mut text = strip_frame(&ask.text);
    text = exaggerate_numbers(&text, 0.25 + intensity + 0.3 * gullibility, &mut rng);
    text = swap_one(&text, &ask.names, 0.2 + 1.5 * intensity, &mut rng);
    text = swap_one(&text, &ask.places, 0.1 + intensity, &mut rng);

    if rng.chance(gullibility) {
        let tail = EMBELLISHMENTS[rng.index(EMBELLISHMENTS.len())];
        text.push_str(tail);
    } else if rng.chance(1.0 - gullibility * 0.5) {
        let head = HEDGES[rng.index(HEDGES.len())];
        text = format!("{head}{}", lower_first(&text));
    }
    truncate_chars(&text, MAX_TEXT_CHARS)
}

fn strip_frame(text: &str) -> String {
    let mut text = text.trim();
    let mut hedged = false;
    for head in HEDGES {
        if let Some(rest) = text.strip_prefix(head) {
            text = rest;
            hedged = true;
            break;
        }
    }
    for tail in EMBELLISHMENTS {
        if let Some(rest) = text.strip_suffix(tail) {
            text = rest;
            break;
        }
    }
    let mut chars = text.chars();
    match chars.next() {
        // A hedge lowered the first letter: the bare sentence starts upper.
        Some(first) if hedged => first.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}

/// Multiplies each number (a run of digits) by 1.5 to 3 with probability `p`.
fn exaggerate_numbers(text: &str, p: f32, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String, rng: &mut Rng| {
        if digits.is_empty() {
            return;
        }
        match digits.parse::<u64>() {
            Ok(n) if n < 1_000_000_000 && rng.chance(p) => {
                let factor = 1.5 + 1.5 * rng.unit();
                let bigger = ((n as f64) * f64::from(factor)).round() as u64;
                out.push_str(&bigger.max(n + 1).to_string());
            }
            _ => out.push_str(digits),
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out, rng);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out, rng);
    out
}

/// With probability `p`, replaces the first name of `pool` found in `text`
/// (longest names first) by another name of `pool`.
fn swap_one(text: &str, pool: &[String], p: f32, rng: &mut Rng) -> String {
    if pool.len() < 2 || !rng.chance(p) {
        return text.to_owned();
    }
    let mut names: Vec<&String> = pool.iter().filter(|n| !n.trim().is_empty()).collect();
    names.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    let Some(found) = names.iter().find(|n| contains_word(text, n)) else {
        return text.to_owned();
    };
    let others: Vec<&&String> = names.iter().filter(|n| *n != found).collect();
    if others.is_empty() {
        return text.to_owned();
    }
    let other = others[rng.index(others.len())];
    text.replacen(found.as_str(), other.as_str(), 1)
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        // Keep names capitalised: only lower a word that is not in the middle
        // of a capitalised pair like "Old Tom".
        Some(first) if first.is_uppercase() && text.split_whitespace().next().is_some_and(is_common_word) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

fn is_common_word(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "the" | "a" | "an" | "there" | "they" | "someone" | "some" | "it" | "we" | "our" | "two" | "three"
    )
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].trim_end().to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Traits;

    fn ask(seed: u64) -> Ask {
        Ask {
            text: "The 12 wolves of Greywood took 3 sheep from Old Tom".to_owned(),
            teller: Traits::PLAYER,
            listener: Traits {
                gullibility: 0.9,
                ..Traits::PLAYER
            },
            intensity: 0.6,
            seed,
            names: vec!["Old Tom".into(), "Mira".into(), "Brannoc".into()],
            places: vec!["Greywood".into(), "Ashford".into()],
        }
    }

    #[test]
    fn same_ask_same_text_and_seeds_vary_it() {
        let local = LocalTransformer;
        let a = local.transform(&ask(1));
        assert_eq!(a, local.transform(&ask(1)));
        assert_eq!(a.by, "local/1");
        let texts: std::collections::HashSet<String> = (0..20).map(|s| local.transform(&ask(s)).text).collect();
        assert!(texts.len() > 5, "seeds should vary the text: {texts:?}");
        assert!(texts.iter().all(|t| t.chars().count() <= MAX_TEXT_CHARS));
    }

    #[test]
    fn numbers_grow_names_swap_and_frames_do_not_pile_up() {
        let mut rng = Rng::new(3);
        assert_eq!(exaggerate_numbers("12 and 3", 0.0, &mut rng), "12 and 3");
        let bigger = exaggerate_numbers("12 wolves", 1.0, &mut rng);
        let n: u64 = bigger.split(' ').next().unwrap().parse().unwrap();
        assert!(n > 12 && n <= 36, "{bigger}");
        let pool = vec!["Mira".to_owned(), "Tom".to_owned()];
        assert_eq!(swap_one("Mira saw it", &pool, 1.0, &mut rng), "Tom saw it");
        assert_eq!(swap_one("Miranda saw it", &pool, 1.0, &mut rng), "Miranda saw it");
        // Retelling a retelling keeps at most one hedge and one embellishment.
        let mut a = ask(9);
        for seed in 0..30 {
            a.seed = seed;
            a.text = LocalTransformer.transform(&a).text;
        }
        let hedges = HEDGES.iter().filter(|h| a.text.contains(*h)).count();
        let tails = EMBELLISHMENTS.iter().filter(|t| a.text.contains(*t)).count();
        assert!(hedges <= 1 && tails <= 1, "{}", a.text);
        assert_eq!(truncate_chars("héllo", 2), "hé");
    }
}
