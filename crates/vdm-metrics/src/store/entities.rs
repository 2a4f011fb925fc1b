//! sea-orm entities for the metrics tables (see `migration.rs` for the DDL).

/// `client_samples`: one row per uploaded frame sample.
pub mod client_sample {
    use sea_orm::entity::prelude::*;

    /// A `client_samples` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "client_samples")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub player_id: i64,
        pub client_version: String,
        pub device_class: String,
        pub recorded_at_ms: i64,
        pub frame_time_ms: f64,
        pub gc_collections: Option<i32>,
        pub gc_pause_ms: Option<f64>,
        pub memory_mb: Option<f64>,
        pub input_latency_ms: Option<f64>,
        pub event_dispatch_ms: Option<f64>,
        pub gc_alloc_bytes: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `client_system_times`: one row per system of an uploaded sample,
/// carrying the sample's version and device class so that percentiles by
/// system and version read one table.
pub mod client_system_time {
    use sea_orm::entity::prelude::*;

    /// A `client_system_times` row.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "client_system_times")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub client_version: String,
        pub device_class: String,
        pub system: String,
        pub recorded_at_ms: i64,
        pub update_ms: f64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `stats_samples`: one row per scrape target per scrape round.
pub mod stats_sample {
    use sea_orm::entity::prelude::*;

    /// A `stats_samples` row; the figures are null when not measured.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "stats_samples")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub service: String,
        pub at_ms: i64,
        pub up: bool,
        pub memory_mb: Option<f64>,
        pub cpu_percent: Option<f64>,
        pub request_count: Option<i64>,
        pub error_count: Option<i64>,
        pub throughput_rps: Option<f64>,
        pub p50_ms: Option<f64>,
        pub p99_ms: Option<f64>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
