//! sea-orm entities for the world tables (see `migration.rs` for the DDL).

/// `regions`: one row per region; ids are chosen by the author.
pub mod region {
    use sea_orm::entity::prelude::*;

    /// A `regions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "regions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub biome: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `region_cells`: which region owns each hex (at most one).
pub mod region_cell {
    use sea_orm::entity::prelude::*;

    /// A `region_cells` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "region_cells")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub q: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub r: i32,
        pub region_id: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `factions`: one row per faction; ids are chosen by the author.
pub mod faction {
    use sea_orm::entity::prelude::*;

    /// A `factions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "factions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `faction_relations`: the score of each pair ever set (`faction_a <
/// faction_b`); a pair without a row scores 0.
pub mod faction_relation {
    use sea_orm::entity::prelude::*;

    /// A `faction_relations` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "faction_relations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub faction_a: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub faction_b: i64,
        pub score: i32,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `world_clock`: the one row (id 1) anchoring game time.
pub mod clock {
    use sea_orm::entity::prelude::*;

    /// The `world_clock` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "world_clock")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub anchor_game_ms: i64,
        pub anchor_real_ms: i64,
        pub rate: f64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `world_events`: one row per event.
pub mod event {
    use sea_orm::entity::prelude::*;

    /// A `world_events` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "world_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub text: String,
        pub game_time_ms: i64,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `world_event_regions`: the regions each event affects.
pub mod event_region {
    use sea_orm::entity::prelude::*;

    /// A `world_event_regions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "world_event_regions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub region_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `world_event_idempotency_keys`: which event a publish with a key made.
pub mod idempotency_key {
    use sea_orm::entity::prelude::*;

    /// A `world_event_idempotency_keys` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "world_event_idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub fingerprint: String,
        pub event_id: i64,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
