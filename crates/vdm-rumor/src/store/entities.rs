//! sea-orm entities for the rumor tables (see `migration.rs` for the DDL).

/// `rumors`: one row per rumor.
pub mod rumor {
    use sea_orm::entity::prelude::*;

    /// A `rumors` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "rumors")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub text: String,
        pub origin_npc_id: Option<i64>,
        pub origin_event_id: Option<i64>,
        pub region_id: i64,
        pub truth: f32,
        /// 0 only inside the creating transaction.
        pub root_variant_id: i64,
        pub created_at_ms: i64,
        pub idempotency_key: Option<String>,
        pub fingerprint: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `rumor_variants`: every telling of every rumor.
pub mod variant {
    use sea_orm::entity::prelude::*;

    /// A `rumor_variants` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "rumor_variants")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub rumor_id: i64,
        pub parent_id: Option<i64>,
        pub teller_npc_id: Option<i64>,
        /// `npc` or `player`; absent for a rumor's first variant.
        pub listener_kind: Option<String>,
        pub listener_id: Option<i64>,
        pub text: String,
        pub distortion: f32,
        pub truth: f32,
        pub transformer: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `rumor_knowledge`: which variant of a rumor each NPC or player knows.
pub mod knowledge {
    use sea_orm::entity::prelude::*;

    /// A `rumor_knowledge` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rumor_knowledge")]
    pub struct Model {
        /// `npc` or `player`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub holder_kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub holder_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub rumor_id: i64,
        pub variant_id: i64,
        /// The rumor's region (copied, so a region's rumors list in one query).
        pub region_id: i64,
        pub since_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The variant known (read with the row: one statement per page).
        #[sea_orm(
            belongs_to = "super::variant::Entity",
            from = "Column::VariantId",
            to = "super::variant::Column::Id"
        )]
        Variant,
    }

    impl Related<super::variant::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Variant.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// `rumor_tick_leases`: which replica runs a region's next tick.
pub mod lease {
    use sea_orm::entity::prelude::*;

    /// A `rumor_tick_leases` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rumor_tick_leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub region_id: i64,
        pub until_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
