//! The world service's tables. Each migration names itself after its module:
//! `DeriveMigrationName` would name it after this file, so every migration
//! added here would be "migration" too.

use sea_orm_migration::prelude::*;

/// Runs the world service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261201_000001_create_world_tables::Migration)]
    }
}

mod m20261201_000001_create_world_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261201_000001_create_world_tables"
        }
    }

    #[derive(DeriveIden)]
    enum Regions {
        Table,
        Id,
        Name,
        Biome,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum RegionCells {
        Table,
        Q,
        R,
        RegionId,
    }

    #[derive(DeriveIden)]
    enum Factions {
        Table,
        Id,
        Name,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum FactionRelations {
        Table,
        FactionA,
        FactionB,
        Score,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum WorldClock {
        Table,
        Id,
        AnchorGameMs,
        AnchorRealMs,
        Rate,
    }

    #[derive(DeriveIden)]
    enum WorldEvents {
        Table,
        Id,
        Kind,
        Text,
        GameTimeMs,
        CreatedAtMs,
    }

    #[derive(DeriveIden)]
    enum WorldEventRegions {
        Table,
        RegionId,
        EventId,
    }

    #[derive(DeriveIden)]
    enum WorldEventIdempotencyKeys {
        Table,
        Key,
        Fingerprint,
        EventId,
        CreatedAtMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Regions::Table)
                        .if_not_exists()
                        .col(big_integer(Regions::Id).primary_key())
                        .col(string_len(Regions::Name, 100))
                        .col(string_len(Regions::Biome, 32))
                        .col(big_integer(Regions::CreatedAtMs))
                        .col(big_integer(Regions::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;

            // The primary key (q, r) makes a cell belong to one region at
            // most, and serves hex lookups and bounding-box scans.
            manager
                .create_table(
                    Table::create()
                        .table(RegionCells::Table)
                        .if_not_exists()
                        .col(integer(RegionCells::Q))
                        .col(integer(RegionCells::R))
                        .col(big_integer(RegionCells::RegionId))
                        .primary_key(Index::create().col(RegionCells::Q).col(RegionCells::R))
                        .foreign_key(
                            ForeignKey::create()
                                .name("region_cells_region_id_fkey")
                                .from(RegionCells::Table, RegionCells::RegionId)
                                .to(Regions::Table, Regions::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            // A region's own cells.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("region_cells_region_id")
                        .table(RegionCells::Table)
                        .col(RegionCells::RegionId)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(Factions::Table)
                        .if_not_exists()
                        .col(big_integer(Factions::Id).primary_key())
                        .col(string_len(Factions::Name, 100))
                        .col(big_integer(Factions::CreatedAtMs))
                        .col(big_integer(Factions::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(FactionRelations::Table)
                        .if_not_exists()
                        .col(big_integer(FactionRelations::FactionA))
                        .col(big_integer(FactionRelations::FactionB))
                        .col(integer(FactionRelations::Score))
                        .col(big_integer(FactionRelations::UpdatedAtMs))
                        .primary_key(
                            Index::create()
                                .col(FactionRelations::FactionA)
                                .col(FactionRelations::FactionB),
                        )
                        .check(Expr::col(FactionRelations::FactionA).lt(Expr::col(FactionRelations::FactionB)))
                        .foreign_key(
                            ForeignKey::create()
                                .name("faction_relations_faction_a_fkey")
                                .from(FactionRelations::Table, FactionRelations::FactionA)
                                .to(Factions::Table, Factions::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name("faction_relations_faction_b_fkey")
                                .from(FactionRelations::Table, FactionRelations::FactionB)
                                .to(Factions::Table, Factions::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(WorldClock::Table)
                        .if_not_exists()
                        .col(integer(WorldClock::Id).primary_key())
                        .col(big_integer(WorldClock::AnchorGameMs))
                        .col(big_integer(WorldClock::AnchorRealMs))
                        .col(double(WorldClock::Rate))
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(WorldEvents::Table)
                        .if_not_exists()
                        .col(big_pk_auto(WorldEvents::Id))
                        .col(string_len(WorldEvents::Kind, 32))
                        .col(text(WorldEvents::Text))
                        .col(big_integer(WorldEvents::GameTimeMs))
                        .col(big_integer(WorldEvents::CreatedAtMs))
                        .to_owned(),
                )
                .await?;
            // Listings since a time, in id order.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("world_events_created_at_ms_id")
                        .table(WorldEvents::Table)
                        .col(WorldEvents::CreatedAtMs)
                        .col(WorldEvents::Id)
                        .to_owned(),
                )
                .await?;
            // The primary key (region_id, event_id) serves listings by region.
            manager
                .create_table(
                    Table::create()
                        .table(WorldEventRegions::Table)
                        .if_not_exists()
                        .col(big_integer(WorldEventRegions::RegionId))
                        .col(big_integer(WorldEventRegions::EventId))
                        .primary_key(
                            Index::create()
                                .col(WorldEventRegions::RegionId)
                                .col(WorldEventRegions::EventId),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name("world_event_regions_event_id_fkey")
                                .from(WorldEventRegions::Table, WorldEventRegions::EventId)
                                .to(WorldEvents::Table, WorldEvents::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            // The regions of a page of events.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("world_event_regions_event_id")
                        .table(WorldEventRegions::Table)
                        .col(WorldEventRegions::EventId)
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(WorldEventIdempotencyKeys::Table)
                        .if_not_exists()
                        .col(string_len(WorldEventIdempotencyKeys::Key, 128).primary_key())
                        .col(string_len(WorldEventIdempotencyKeys::Fingerprint, 32))
                        .col(big_integer(WorldEventIdempotencyKeys::EventId))
                        .col(big_integer(WorldEventIdempotencyKeys::CreatedAtMs))
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for table in [
                WorldEventIdempotencyKeys::Table.into_iden(),
                WorldEventRegions::Table.into_iden(),
                WorldEvents::Table.into_iden(),
                WorldClock::Table.into_iden(),
                FactionRelations::Table.into_iden(),
                Factions::Table.into_iden(),
                RegionCells::Table.into_iden(),
                Regions::Table.into_iden(),
            ] {
                manager.drop_table(Table::drop().table(table).to_owned()).await?;
            }
            Ok(())
        }
    }
}
