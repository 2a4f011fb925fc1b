//! sea-orm entities for the quest tables (see `migration.rs` for the DDL).

/// `quests`: one row per quest definition.
pub mod quest {
    use sea_orm::entity::prelude::*;

    /// A `quests` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quests")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        pub description: String,
        pub giver_npc_id: i64,
        pub region_id: i64,
        pub level_requirement: i32,
        pub reward_gold: i64,
        pub reward_xp: i64,
        /// JSON array of item ids.
        pub reward_item_ids: String,
        /// The standing a completion gives; NULL: the default.
        pub reward_standing: Option<i32>,
        /// The giver's change of disposition a completion gives; NULL: the
        /// default.
        pub reward_disposition: Option<i32>,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `quest_objectives`: the objectives of each quest, by position.
pub mod objective {
    use sea_orm::entity::prelude::*;

    /// A `quest_objectives` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quest_objectives")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub quest_id: i64,
        pub position: i32,
        pub description: String,
        pub target_count: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `quest_idempotency_keys`: which quest a create with a given key made.
pub mod idempotency_key {
    use sea_orm::entity::prelude::*;

    /// A `quest_idempotency_keys` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quest_idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub fingerprint: String,
        pub quest_id: i64,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `player_quests`: each player's status and progress on each quest.
pub mod player_quest {
    use sea_orm::entity::prelude::*;

    /// A `player_quests` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "player_quests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub player_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub quest_id: i64,
        pub status: String,
        pub accepted_at_ms: i64,
        pub updated_at_ms: i64,
        pub completed_at_ms: Option<i64>,
        /// JSON array of `[objective_id, progress]` pairs.
        pub progress: String,
        /// Bumped by every write; guards read-modify-write against lost updates.
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `reward_outbox`: deliveries owed to other services, written in the
/// transaction that completes a quest and sent by the relay.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// A `reward_outbox` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reward_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The id the receiving service applies once.
        pub grant_id: String,
        /// What is delivered, and to which service (`reward`).
        pub kind: String,
        pub player_id: i64,
        pub quest_id: i64,
        /// JSON of the delivery (`domain::RewardGrant` for `reward`).
        pub payload: String,
        /// `pending`, `delivered` or `failed`.
        pub status: String,
        /// Deliveries tried and not acknowledged.
        pub attempts: i32,
        /// When a pending row is due (Unix ms).
        pub next_attempt_at_ms: i64,
        /// Why the last try failed, or why the row was refused for good.
        pub last_error: Option<String>,
        pub created_at_ms: i64,
        pub delivered_at_ms: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
