//! sea-orm entities for the player tables (see `migration.rs` for the DDL).

/// `players`: one per device; the account, the profile and the balances
/// of gold and xp.
pub mod player {
    use sea_orm::entity::prelude::*;

    /// A `players` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "players")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub device_id: String,
        pub display_name: Option<String>,
        /// The lowercased display name; unique, so names are unique
        /// case-insensitively.
        #[sea_orm(unique)]
        pub display_name_key: Option<String>,
        pub xp: i64,
        pub gold: i64,
        /// Sessions issued until then are revoked (0: none).
        pub sessions_revoked_at_ms: i64,
        /// Bumped by every change of balances; the update that bumps it is
        /// the first statement of a change's transaction, so it takes the
        /// row's lock (Postgres) or the write lock (SQLite) up front.
        pub version: i64,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `player_sessions`: a session family once it has been refreshed or
/// revoked.
pub mod session {
    use sea_orm::entity::prelude::*;

    /// A `player_sessions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "player_sessions")]
    pub struct Model {
        /// The family id (the `sid` claim).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub player_id: i64,
        /// The generation of the one refresh token that is valid now.
        pub generation: i64,
        pub revoked_at_ms: Option<i64>,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `items`: the catalog.
pub mod item {
    use sea_orm::entity::prelude::*;

    /// An `items` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        #[sea_orm(unique)]
        pub key: String,
        pub name: String,
        pub kind: String,
        pub rarity: String,
        pub max_stack: i32,
        pub tradeable: bool,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `inventory_stacks`: the units of each item each player holds (a row
/// per item held; a stack emptied to 0 is deleted).
pub mod stack {
    use sea_orm::entity::prelude::*;

    /// An `inventory_stacks` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inventory_stacks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub player_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub item_id: i64,
        pub quantity: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `ledger`: one row per change of one balance.
pub mod ledger {
    use sea_orm::entity::prelude::*;

    /// A `ledger` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub player_id: i64,
        /// `gold`, `xp`, `item` or `standing`.
        pub kind: String,
        pub item_id: Option<i64>,
        /// The faction of a `standing` row.
        pub faction_id: Option<i64>,
        pub amount: i64,
        pub balance_after: i64,
        pub reason: String,
        pub source_id: String,
        pub grant_id: Option<String>,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `grants`: the changes applied under a grant id, with what they
/// returned.
pub mod grant {
    use sea_orm::entity::prelude::*;

    /// A `grants` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub grant_id: String,
        pub player_id: i64,
        /// The change's fingerprint.
        pub fingerprint: String,
        /// The JSON outcome returned the first time.
        pub outcome: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `faction_standings`: each player's standing with each faction it has
/// one with (-100..=100).
pub mod standing {
    use sea_orm::entity::prelude::*;

    /// A `faction_standings` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "faction_standings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub player_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub faction_id: i64,
        pub standing: i32,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
