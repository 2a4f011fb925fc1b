//! sea-orm entities for the NPC tables (see `migration.rs` for the DDL).

/// `npcs`: one row per NPC.
pub mod npc {
    use sea_orm::entity::prelude::*;

    /// An `npcs` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "npcs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        pub region_id: i64,
        pub q: i32,
        pub r: i32,
        pub faction_id: Option<i64>,
        pub gullibility: f32,
        pub talkativeness: f32,
        pub honesty: f32,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `npc_idempotency_keys`: which NPC a create with a given key made.
pub mod idempotency_key {
    use sea_orm::entity::prelude::*;

    /// An `npc_idempotency_keys` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "npc_idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub fingerprint: String,
        pub npc_id: i64,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `npc_dispositions`: each player's score with each NPC, once adjusted.
pub mod disposition {
    use sea_orm::entity::prelude::*;

    /// An `npc_dispositions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "npc_dispositions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub player_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub npc_id: i64,
        pub score: i32,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `npc_disposition_keys`: the idempotency keys of the disposition changes
/// applied, each with the request it was applied for.
pub mod disposition_key {
    use sea_orm::entity::prelude::*;

    /// An `npc_disposition_keys` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "npc_disposition_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// Of the NPC, player and delta the key was applied for.
        pub fingerprint: String,
        pub npc_id: i64,
        pub player_id: i64,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `npc_memories`: what each NPC remembers (capped per NPC).
pub mod memory {
    use sea_orm::entity::prelude::*;

    /// An `npc_memories` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "npc_memories")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub npc_id: i64,
        pub kind: String,
        pub text: String,
        /// JSON array of ids.
        pub subject_ids: String,
        pub importance: f32,
        pub game_time_ms: i64,
        pub created_at_ms: i64,
        pub idempotency_key: Option<String>,
        pub fingerprint: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
