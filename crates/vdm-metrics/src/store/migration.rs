//! The metrics service's tables. Each migration names itself:
//! `DeriveMigrationName` would name every one after this file. The first
//! was recorded as "migration" (its derived name) and keeps that name, so
//! databases that ran it do not run it again.

use sea_orm_migration::prelude::*;

/// Runs the metrics service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_client_tables::Migration),
            Box::new(m20261127_000002_create_stats_samples::Migration),
            Box::new(m20261204_000003_add_gc_alloc_bytes::Migration),
        ]
    }
}

mod m20261127_000001_create_client_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "migration"
        }
    }

    #[derive(DeriveIden)]
    enum ClientSamples {
        Table,
        Id,
        PlayerId,
        ClientVersion,
        DeviceClass,
        RecordedAtMs,
        FrameTimeMs,
        GcCollections,
        GcPauseMs,
        MemoryMb,
        InputLatencyMs,
        EventDispatchMs,
    }

    #[derive(DeriveIden)]
    enum ClientSystemTimes {
        Table,
        Id,
        ClientVersion,
        DeviceClass,
        System,
        RecordedAtMs,
        UpdateMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(ClientSamples::Table)
                        .if_not_exists()
                        .col(big_pk_auto(ClientSamples::Id))
                        .col(big_integer(ClientSamples::PlayerId))
                        .col(string_len(ClientSamples::ClientVersion, 32))
                        .col(string_len(ClientSamples::DeviceClass, 32))
                        .col(big_integer(ClientSamples::RecordedAtMs))
                        .col(double(ClientSamples::FrameTimeMs))
                        .col(integer_null(ClientSamples::GcCollections))
                        .col(double_null(ClientSamples::GcPauseMs))
                        .col(double_null(ClientSamples::MemoryMb))
                        .col(double_null(ClientSamples::InputLatencyMs))
                        .col(double_null(ClientSamples::EventDispatchMs))
                        .to_owned(),
                )
                .await?;
            // Stats by version read the newest rows of one version.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("client_samples_client_version_id")
                        .table(ClientSamples::Table)
                        .col(ClientSamples::ClientVersion)
                        .col(ClientSamples::Id)
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(ClientSystemTimes::Table)
                        .if_not_exists()
                        .col(big_pk_auto(ClientSystemTimes::Id))
                        .col(string_len(ClientSystemTimes::ClientVersion, 32))
                        .col(string_len(ClientSystemTimes::DeviceClass, 32))
                        .col(string_len(ClientSystemTimes::System, 32))
                        .col(big_integer(ClientSystemTimes::RecordedAtMs))
                        .col(double(ClientSystemTimes::UpdateMs))
                        .to_owned(),
                )
                .await?;
            // Stats by system (and version) read the newest rows of one system.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("client_system_times_system_id")
                        .table(ClientSystemTimes::Table)
                        .col(ClientSystemTimes::System)
                        .col(ClientSystemTimes::Id)
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(ClientSystemTimes::Table).to_owned())
                .await?;
            manager
                .drop_table(Table::drop().table(ClientSamples::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}

mod m20261127_000002_create_stats_samples {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261127_000002_create_stats_samples"
        }
    }

    #[derive(DeriveIden)]
    enum StatsSamples {
        Table,
        Id,
        Service,
        AtMs,
        Up,
        MemoryMb,
        CpuPercent,
        RequestCount,
        ErrorCount,
        ThroughputRps,
        P50Ms,
        P99Ms,
        Error,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(StatsSamples::Table)
                        .if_not_exists()
                        .col(big_pk_auto(StatsSamples::Id))
                        .col(string_len(StatsSamples::Service, 32))
                        .col(big_integer(StatsSamples::AtMs))
                        .col(boolean(StatsSamples::Up))
                        .col(double_null(StatsSamples::MemoryMb))
                        .col(double_null(StatsSamples::CpuPercent))
                        .col(big_integer_null(StatsSamples::RequestCount))
                        .col(big_integer_null(StatsSamples::ErrorCount))
                        .col(double_null(StatsSamples::ThroughputRps))
                        .col(double_null(StatsSamples::P50Ms))
                        .col(double_null(StatsSamples::P99Ms))
                        .col(string_len_null(StatsSamples::Error, 200))
                        .to_owned(),
                )
                .await?;
            // History reads a time range (of one service); retention deletes
            // by time.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("stats_samples_at_ms")
                        .table(StatsSamples::Table)
                        .col(StatsSamples::AtMs)
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("stats_samples_service_at_ms")
                        .table(StatsSamples::Table)
                        .col(StatsSamples::Service)
                        .col(StatsSamples::AtMs)
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(StatsSamples::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}

mod m20261204_000003_add_gc_alloc_bytes {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261204_000003_add_gc_alloc_bytes"
        }
    }

    #[derive(DeriveIden)]
    enum ClientSamples {
        Table,
        GcAllocBytes,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // Nullable: rows stored before the field existed did not measure it.
            manager
                .alter_table(
                    Table::alter()
                        .table(ClientSamples::Table)
                        .add_column(big_integer_null(ClientSamples::GcAllocBytes))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(ClientSamples::Table)
                        .drop_column(ClientSamples::GcAllocBytes)
                        .to_owned(),
                )
                .await
        }
    }
}
