//! The JSON shapes of the profile, inventory, ledger, grant and item routes
//! (bodies, queries, answers) and their conversions from and to the player
//! service's messages.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::player::v1 as pb;

use crate::routes::shared::non_empty;

/// A player's profile: name, level, xp, gold.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileJson {
    player_id: i64,
    /// Left out until the player chooses one.
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    /// 1 for a new player; derived from `xp`.
    level: u32,
    xp: i64,
    /// The xp at which the next level starts; left out at the last level.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_level_xp: Option<i64>,
    /// Never negative.
    gold: i64,
    /// RFC 3339 UTC: when the player was created.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339 UTC: when the profile last changed.
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<pb::Profile> for ProfileJson {
    fn from(p: pb::Profile) -> ProfileJson {
        ProfileJson {
            player_id: p.player_id,
            display_name: non_empty(p.display_name),
            level: p.level,
            xp: p.xp,
            next_level_xp: (p.next_level_xp > 0).then_some(p.next_level_xp),
            gold: p.gold,
            created_at: vdm_kit::rfc3339(p.created_at_ms),
            updated_at: vdm_kit::rfc3339(p.updated_at_ms),
        }
    }
}

/// `PATCH /v1/me` body: fields left out (or null) keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatchJson {
    /// 3 to 24 letters, digits, `_` or `-`, single spaces between words
    /// (surrounding spaces are trimmed); unique, case-insensitively.
    #[schema(min_length = 3, max_length = 24, pattern = "^[A-Za-z0-9_-]+( [A-Za-z0-9_-]+)*$")]
    pub display_name: Option<String>,
}

/// `player.level_up`: a change raised the player's level.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelUpJson {
    player_id: i64,
    previous_level: u32,
    level: u32,
}

impl From<vdm_proto::events::v1::PlayerLevelUp> for LevelUpJson {
    fn from(up: vdm_proto::events::v1::PlayerLevelUp) -> LevelUpJson {
        LevelUpJson {
            player_id: up.player_id,
            previous_level: up.previous_level,
            level: up.level,
        }
    }
}

/// How rare an item is.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RarityJson {
    /// The default.
    #[default]
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

impl RarityJson {
    fn as_str(self) -> &'static str {
        match self {
            RarityJson::Common => "common",
            RarityJson::Uncommon => "uncommon",
            RarityJson::Rare => "rare",
            RarityJson::Epic => "epic",
            RarityJson::Legendary => "legendary",
        }
    }

    /// The rarity of a stored item; an unknown name reads as common.
    fn parse(name: &str) -> RarityJson {
        match name {
            "uncommon" => RarityJson::Uncommon,
            "rare" => RarityJson::Rare,
            "epic" => RarityJson::Epic,
            "legendary" => RarityJson::Legendary,
            _ => RarityJson::Common,
        }
    }
}

/// A catalog item as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemJson {
    id: i64,
    /// A stable label, unique.
    key: String,
    name: String,
    /// A lowercase label (`weapon`, `potion`, ...).
    kind: String,
    rarity: RarityJson,
    /// The most units one stack holds.
    max_stack: u32,
    tradeable: bool,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<pb::Item> for ItemJson {
    fn from(i: pb::Item) -> ItemJson {
        ItemJson {
            id: i.id,
            rarity: RarityJson::parse(&i.rarity),
            key: i.key,
            name: i.name,
            kind: i.kind,
            max_stack: i.max_stack,
            tradeable: i.tradeable,
            created_at: vdm_kit::rfc3339(i.created_at_ms),
            updated_at: vdm_kit::rfc3339(i.updated_at_ms),
        }
    }
}

/// `PUT /v1/items/{id}` body: the whole item (created or replaced).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBodyJson {
    /// A stable label: a lowercase letter, then up to 31 lowercase
    /// letters, digits or `_`; unique.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    key: String,
    /// What players see.
    name: String,
    /// A lowercase label (`weapon`, `potion`, ...).
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    kind: String,
    /// Common when left out.
    #[serde(default)]
    rarity: RarityJson,
    /// The most units one stack holds. Lowering it leaves larger stacks
    /// as they are: they can shrink, not grow, until under it.
    #[schema(minimum = 1, maximum = 9999)]
    max_stack: u32,
    /// Whether players may trade it (false when left out).
    #[serde(default)]
    tradeable: bool,
}

impl ItemBodyJson {
    /// The item message of a put, with the id of the path.
    pub fn into_pb(self, id: i64) -> pb::Item {
        pb::Item {
            id,
            key: self.key,
            name: self.name,
            kind: self.kind,
            rarity: self.rarity.as_str().to_owned(),
            max_stack: self.max_stack,
            tradeable: self.tradeable,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }
}

/// One stack of a player's inventory: an item and how many units.
#[derive(Debug, Serialize, ToSchema)]
pub struct StackJson {
    item_id: i64,
    name: String,
    kind: String,
    rarity: RarityJson,
    /// Units held.
    count: i64,
    /// The most units the stack may hold.
    max_stack: u32,
}

impl From<pb::Stack> for StackJson {
    fn from(s: pb::Stack) -> StackJson {
        let item = s.item.unwrap_or_default();
        StackJson {
            item_id: item.id,
            rarity: RarityJson::parse(&item.rarity),
            name: item.name,
            kind: item.kind,
            count: s.quantity,
            max_stack: item.max_stack,
        }
    }
}

/// A player's inventory: one stack per item held, in item id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryJson {
    stacks: Vec<StackJson>,
}

impl From<pb::Inventory> for InventoryJson {
    fn from(inventory: pb::Inventory) -> InventoryJson {
        InventoryJson {
            stacks: inventory.stacks.into_iter().map(StackJson::from).collect(),
        }
    }
}

/// Which balance a ledger entry changed.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKindJson {
    /// Gold.
    Gold,
    /// Experience.
    Xp,
    /// Units of an item (`item_id`).
    Item,
    /// Standing with a faction (`faction_id`), -100 to 100.
    Standing,
}

/// One change of one balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryJson {
    id: i64,
    kind: LedgerKindJson,
    /// The item, for `kind: item`.
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<i64>,
    /// The faction, for `kind: standing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    faction_id: Option<i64>,
    /// Signed: positive for a grant, negative for a removal.
    amount: i64,
    /// The balance right after this change.
    balance_after: i64,
    /// Why.
    reason: String,
    /// What caused it; left out when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    source_id: Option<String>,
    /// The grant that made it exactly-once; left out when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_id: Option<String>,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    at: String,
}

impl From<pb::LedgerEntry> for LedgerEntryJson {
    fn from(e: pb::LedgerEntry) -> LedgerEntryJson {
        let kind = match pb::LedgerKind::try_from(e.kind) {
            Ok(pb::LedgerKind::Xp) => LedgerKindJson::Xp,
            Ok(pb::LedgerKind::Item) => LedgerKindJson::Item,
            Ok(pb::LedgerKind::Standing) => LedgerKindJson::Standing,
            _ => LedgerKindJson::Gold,
        };
        LedgerEntryJson {
            id: e.id,
            kind,
            item_id: (e.item_id > 0).then_some(e.item_id),
            faction_id: (e.faction_id > 0).then_some(e.faction_id),
            amount: e.amount,
            balance_after: e.balance_after,
            reason: e.reason,
            source_id: non_empty(e.source_id),
            grant_id: non_empty(e.grant_id),
            at: vdm_kit::rfc3339(e.created_at_ms),
        }
    }
}

/// The player's standing with one faction.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactionStandingJson {
    faction_id: i64,
    /// The faction's name; left out when the world service could not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// -100 to 100; raised by completing quests of the faction's NPCs.
    standing: i32,
}

impl FactionStandingJson {
    /// A standing, named from `names` (faction id to name) when it knows it.
    pub fn named(standing: pb::Standing, names: &std::collections::HashMap<i64, String>) -> FactionStandingJson {
        FactionStandingJson {
            faction_id: standing.faction_id,
            name: names.get(&standing.faction_id).cloned(),
            standing: standing.standing,
        }
    }
}

/// The player's standing with every faction it has one with, in faction
/// id order (a faction left out is at 0).
#[derive(Debug, Serialize, ToSchema)]
pub struct FactionStandingsJson {
    /// One per faction.
    pub items: Vec<FactionStandingJson>,
}

/// `GET /v1/me/ledger` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (newest first).
    #[param(pattern = "^d(0|[1-9][0-9]{0,17})$")]
    pub cursor: Option<String>,
}

/// `GET /v1/items` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListItemsQuery {
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Units of one item in a grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemAmountJson {
    item_id: i64,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    quantity: i64,
}

/// `POST /v1/players/{id}/grants` body: what to add, and why. At least one
/// of gold, xp or items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantJson {
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    gold: i64,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    xp: i64,
    /// Up to 100 distinct items (an id listed twice adds up).
    #[serde(default)]
    #[schema(max_items = 100)]
    items: Vec<ItemAmountJson>,
    /// Why (kept in the ledger).
    reason: String,
    /// What caused it (a ticket, an event id).
    #[serde(default)]
    source_id: String,
}

impl GrantJson {
    /// The grant message for `player_id`; `grant_id` (from the
    /// `Idempotency-Key`, may be empty) makes it apply once.
    pub fn into_pb(self, player_id: i64, grant_id: String) -> pb::GrantRequest {
        pb::GrantRequest {
            player_id,
            amounts: Some(pb::Amounts {
                gold: self.gold,
                xp: self.xp,
                items: self
                    .items
                    .into_iter()
                    .map(|i| pb::ItemAmount {
                        item_id: i.item_id,
                        quantity: i.quantity,
                    })
                    .collect(),
            }),
            reason: self.reason,
            source_id: self.source_id,
            grant_id,
        }
    }
}

/// What a grant did: the profile after it, and whether it raised the level.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeJson {
    /// The profile right after the grant (on a replay: as the first left it).
    profile: ProfileJson,
    leveled_up: bool,
    /// The level before the grant.
    previous_level: u32,
    /// Whether an earlier request with the same `Idempotency-Key` applied it.
    replayed: bool,
}

impl From<pb::ChangeResponse> for ChangeJson {
    fn from(c: pb::ChangeResponse) -> ChangeJson {
        ChangeJson {
            profile: ProfileJson::from(c.profile.unwrap_or_default()),
            leveled_up: c.leveled_up,
            previous_level: c.previous_level,
            replayed: c.replayed,
        }
    }
}
