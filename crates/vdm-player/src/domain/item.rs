//! Catalog items, as operators write them.

use vdm_kit::validate::{Invalid, TextRule, positive_id, text_field, word_field};

/// The largest `max_stack` an item may have.
pub const MAX_STACK_LIMIT: u32 = 9999;

/// How rare an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rarity {
    /// The default.
    Common,
    /// A step up.
    Uncommon,
    /// Rare.
    Rare,
    /// Epic.
    Epic,
    /// The rarest.
    Legendary,
}

impl Rarity {
    /// Every rarity, from the most common.
    pub const ALL: [Rarity; 5] = [
        Rarity::Common,
        Rarity::Uncommon,
        Rarity::Rare,
        Rarity::Epic,
        Rarity::Legendary,
    ];

    /// Its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rarity::Common => "common",
            Rarity::Uncommon => "uncommon",
            Rarity::Rare => "rare",
            Rarity::Epic => "epic",
            Rarity::Legendary => "legendary",
        }
    }

    /// The rarity named `name`.
    pub fn parse(name: &str) -> Option<Rarity> {
        Rarity::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A catalog item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Chosen by the operator; quest rewards name items by it.
    pub id: i64,
    /// A unique lowercase label.
    pub key: String,
    /// What players see.
    pub name: String,
    /// A lowercase label (`weapon`, `potion`).
    pub kind: String,
    /// How rare it is.
    pub rarity: Rarity,
    /// The most units one stack holds.
    pub max_stack: u32,
    /// Whether players may trade it.
    pub tradeable: bool,
    /// When it was first written.
    pub created_at_ms: i64,
    /// When it was last written.
    pub updated_at_ms: i64,
}

/// An item as an operator sends it, not yet checked.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    /// The item id.
    pub id: i64,
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its rarity (empty: common).
    pub rarity: String,
    /// Its stack limit.
    pub max_stack: u32,
    /// Whether it is tradeable.
    pub tradeable: bool,
}

/// A checked item, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The item id.
    pub id: i64,
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its rarity.
    pub rarity: Rarity,
    /// Its stack limit.
    pub max_stack: u32,
    /// Whether it is tradeable.
    pub tradeable: bool,
}

impl NewItem {
    /// Checks every field, naming the first that is wrong.
    pub fn parse(input: ItemInput) -> Result<NewItem, Invalid> {
        positive_id("item.id", input.id)?;
        let key = word_field("item.key", &input.key)?;
        let name = text_field("item.name", input.name, TextRule::line(64))?;
        let kind = word_field("item.kind", &input.kind)?;
        let rarity_name = input.rarity.trim();
        let rarity = if rarity_name.is_empty() {
            Rarity::Common
        } else {
            Rarity::parse(rarity_name).ok_or_else(|| {
                let names: Vec<&str> = Rarity::ALL.iter().map(|r| r.as_str()).collect();
                Invalid(format!(
                    "item.rarity must be one of {}, got {rarity_name:?}",
                    names.join(", ")
                ))
            })?
        };
        if !(1..=MAX_STACK_LIMIT).contains(&input.max_stack) {
            return Err(Invalid(format!(
                "item.max_stack must be between 1 and {MAX_STACK_LIMIT}, got {}",
                input.max_stack
            )));
        }
        Ok(NewItem {
            id: input.id,
            key,
            name,
            kind,
            rarity,
            max_stack: input.max_stack,
            tradeable: input.tradeable,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input() -> ItemInput {
        ItemInput {
            id: 1,
            key: "iron_sword".into(),
            name: " Iron Sword ".into(),
            kind: "weapon".into(),
            rarity: "rare".into(),
            max_stack: 1,
            tradeable: true,
        }
    }

    #[test]
    fn items_are_checked_field_by_field() {
        let item = NewItem::parse(input()).unwrap();
        assert_eq!(item.name, "Iron Sword");
        assert_eq!(item.rarity, Rarity::Rare);
        assert_eq!(
            NewItem::parse(ItemInput {
                rarity: String::new(),
                ..input()
            })
            .unwrap()
            .rarity,
            Rarity::Common
        );
        let cases: [(ItemInput, &str); 5] = [
            (ItemInput { id: 0, ..input() }, "item.id"),
            (
                ItemInput {
                    key: "Iron Sword".into(),
                    ..input()
                },
                "item.key",
            ),
            (
                ItemInput {
                    rarity: "mythic".into(),
                    ..input()
                },
                "item.rarity",
            ),
            (
                ItemInput {
                    max_stack: 0,
                    ..input()
                },
                "item.max_stack",
            ),
            (
                ItemInput {
                    max_stack: 10_000,
                    ..input()
                },
                "item.max_stack",
            ),
        ];
        for (bad, field) in cases {
            let err = NewItem::parse(bad).unwrap_err().0;
            assert!(err.starts_with(field), "{err}");
        }
    }
}
