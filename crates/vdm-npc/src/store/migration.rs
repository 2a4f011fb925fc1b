//! The NPC service's tables. Each migration names itself after its module:
//! `DeriveMigrationName` would name it after this file, so every migration
//! added here would be "migration" too.

use sea_orm_migration::prelude::*;

/// Runs the NPC service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_create_npc_tables::Migration),
            Box::new(m20261204_000001_create_npc_disposition_keys::Migration),
        ]
    }
}

mod m20261201_000001_create_npc_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261201_000001_create_npc_tables"
        }
    }

    #[derive(DeriveIden)]
    enum Npcs {
        Table,
        Id,
        Name,
        RegionId,
        Q,
        R,
        FactionId,
        Gullibility,
        Talkativeness,
        Honesty,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum NpcIdempotencyKeys {
        Table,
        Key,
        Fingerprint,
        NpcId,
        CreatedAtMs,
    }

    #[derive(DeriveIden)]
    enum NpcDispositions {
        Table,
        PlayerId,
        NpcId,
        Score,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum NpcMemories {
        Table,
        Id,
        NpcId,
        Kind,
        Text,
        SubjectIds,
        Importance,
        GameTimeMs,
        CreatedAtMs,
        IdempotencyKey,
        Fingerprint,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Npcs::Table)
                        .if_not_exists()
                        .col(big_pk_auto(Npcs::Id))
                        .col(string_len(Npcs::Name, 100))
                        .col(big_integer(Npcs::RegionId))
                        .col(integer(Npcs::Q))
                        .col(integer(Npcs::R))
                        .col(big_integer_null(Npcs::FactionId))
                        .col(float(Npcs::Gullibility))
                        .col(float(Npcs::Talkativeness))
                        .col(float(Npcs::Honesty))
                        .col(big_integer(Npcs::CreatedAtMs))
                        .col(big_integer(Npcs::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;
            // Keyset pages filter by region or faction and order by id; the
            // region one also serves a player's dispositions in a region.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("npcs_region_id_id")
                        .table(Npcs::Table)
                        .col(Npcs::RegionId)
                        .col(Npcs::Id)
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("npcs_faction_id_id")
                        .table(Npcs::Table)
                        .col(Npcs::FactionId)
                        .col(Npcs::Id)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(NpcIdempotencyKeys::Table)
                        .if_not_exists()
                        .col(string_len(NpcIdempotencyKeys::Key, 128).primary_key())
                        .col(string_len(NpcIdempotencyKeys::Fingerprint, 32))
                        .col(big_integer(NpcIdempotencyKeys::NpcId))
                        .col(big_integer(NpcIdempotencyKeys::CreatedAtMs))
                        .to_owned(),
                )
                .await?;

            // The primary key (player_id, npc_id) serves one player's
            // dispositions with many NPCs.
            manager
                .create_table(
                    Table::create()
                        .table(NpcDispositions::Table)
                        .if_not_exists()
                        .col(big_integer(NpcDispositions::PlayerId))
                        .col(big_integer(NpcDispositions::NpcId))
                        .col(integer(NpcDispositions::Score))
                        .col(big_integer(NpcDispositions::UpdatedAtMs))
                        .primary_key(
                            Index::create()
                                .col(NpcDispositions::PlayerId)
                                .col(NpcDispositions::NpcId),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name("npc_dispositions_npc_id_fkey")
                                .from(NpcDispositions::Table, NpcDispositions::NpcId)
                                .to(Npcs::Table, Npcs::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(NpcMemories::Table)
                        .if_not_exists()
                        .col(big_pk_auto(NpcMemories::Id))
                        .col(big_integer(NpcMemories::NpcId))
                        .col(string_len(NpcMemories::Kind, 32))
                        .col(text(NpcMemories::Text))
                        .col(text(NpcMemories::SubjectIds))
                        .col(float(NpcMemories::Importance))
                        .col(big_integer(NpcMemories::GameTimeMs))
                        .col(big_integer(NpcMemories::CreatedAtMs))
                        .col(string_len_null(NpcMemories::IdempotencyKey, 128))
                        .col(string_len_null(NpcMemories::Fingerprint, 32))
                        .foreign_key(
                            ForeignKey::create()
                                .name("npc_memories_npc_id_fkey")
                                .from(NpcMemories::Table, NpcMemories::NpcId)
                                .to(Npcs::Table, Npcs::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            // An NPC's memories newest first (keyset on id), and the ranks
            // eviction reads.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("npc_memories_npc_id_id")
                        .table(NpcMemories::Table)
                        .col(NpcMemories::NpcId)
                        .col(NpcMemories::Id)
                        .to_owned(),
                )
                .await?;
            // A retried record finds its memory by key (NULL keys never collide).
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("npc_memories_npc_id_idempotency_key")
                        .table(NpcMemories::Table)
                        .col(NpcMemories::NpcId)
                        .col(NpcMemories::IdempotencyKey)
                        .unique()
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for table in [
                NpcMemories::Table.into_iden(),
                NpcDispositions::Table.into_iden(),
                NpcIdempotencyKeys::Table.into_iden(),
                Npcs::Table.into_iden(),
            ] {
                manager.drop_table(Table::drop().table(table).to_owned()).await?;
            }
            Ok(())
        }
    }
}

mod m20261204_000001_create_npc_disposition_keys {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261204_000001_create_npc_disposition_keys"
        }
    }

    #[derive(DeriveIden)]
    enum NpcDispositionKeys {
        Table,
        Key,
        Fingerprint,
        NpcId,
        PlayerId,
        CreatedAtMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // One row per disposition change applied under a key, written in
            // the change's transaction: a replay finds it and adds nothing.
            manager
                .create_table(
                    Table::create()
                        .table(NpcDispositionKeys::Table)
                        .if_not_exists()
                        .col(string_len(NpcDispositionKeys::Key, 128).primary_key())
                        .col(string_len(NpcDispositionKeys::Fingerprint, 32))
                        .col(big_integer(NpcDispositionKeys::NpcId))
                        .col(big_integer(NpcDispositionKeys::PlayerId))
                        .col(big_integer(NpcDispositionKeys::CreatedAtMs))
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(NpcDispositionKeys::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}
