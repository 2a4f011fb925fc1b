//! The quest service's tables. `DeriveMigrationName` names a migration
//! after its file: the first migration of this file was recorded under that
//! derived name ("migration") and keeps it, so databases that ran it do not
//! run it again; every later one names itself by hand.

use sea_orm_migration::prelude::*;

/// Runs the quest service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_quest_tables::Migration),
            Box::new(m20261203_000001_create_reward_outbox::Migration),
            Box::new(m20261204_000001_add_quest_reward_amounts::Migration),
            Box::new(m20261206_000001_player_quests_updated_in_place::Migration),
        ]
    }
}

mod m20261127_000001_create_quest_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    #[derive(DeriveMigrationName)]
    pub struct Migration;

    #[derive(DeriveIden)]
    enum Quests {
        Table,
        Id,
        Title,
        Description,
        GiverNpcId,
        RegionId,
        LevelRequirement,
        RewardGold,
        RewardXp,
        RewardItemIds,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum QuestObjectives {
        Table,
        Id,
        QuestId,
        Position,
        Description,
        TargetCount,
    }

    #[derive(DeriveIden)]
    enum QuestIdempotencyKeys {
        Table,
        Key,
        Fingerprint,
        QuestId,
        CreatedAtMs,
    }

    #[derive(DeriveIden)]
    enum PlayerQuests {
        Table,
        PlayerId,
        QuestId,
        Status,
        AcceptedAtMs,
        UpdatedAtMs,
        CompletedAtMs,
        Progress,
        Version,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Quests::Table)
                        .if_not_exists()
                        .col(big_pk_auto(Quests::Id))
                        .col(string_len(Quests::Title, 200))
                        .col(text(Quests::Description))
                        .col(big_integer(Quests::GiverNpcId))
                        .col(big_integer(Quests::RegionId))
                        .col(integer(Quests::LevelRequirement))
                        .col(big_integer(Quests::RewardGold))
                        .col(big_integer(Quests::RewardXp))
                        .col(text(Quests::RewardItemIds))
                        .col(big_integer(Quests::CreatedAtMs))
                        .col(big_integer(Quests::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;
            // Keyset pages filter by region or giver and order by id.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("quests_region_id_id")
                        .table(Quests::Table)
                        .col(Quests::RegionId)
                        .col(Quests::Id)
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("quests_giver_npc_id_id")
                        .table(Quests::Table)
                        .col(Quests::GiverNpcId)
                        .col(Quests::Id)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(QuestObjectives::Table)
                        .if_not_exists()
                        .col(big_pk_auto(QuestObjectives::Id))
                        .col(big_integer(QuestObjectives::QuestId))
                        .col(integer(QuestObjectives::Position))
                        .col(string_len(QuestObjectives::Description, 500))
                        .col(integer(QuestObjectives::TargetCount))
                        .foreign_key(
                            ForeignKey::create()
                                .name("quest_objectives_quest_id_fkey")
                                .from(QuestObjectives::Table, QuestObjectives::QuestId)
                                .to(Quests::Table, Quests::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("quest_objectives_quest_id_position")
                        .table(QuestObjectives::Table)
                        .col(QuestObjectives::QuestId)
                        .col(QuestObjectives::Position)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(QuestIdempotencyKeys::Table)
                        .if_not_exists()
                        .col(string_len(QuestIdempotencyKeys::Key, 128).primary_key())
                        .col(string_len(QuestIdempotencyKeys::Fingerprint, 32))
                        .col(big_integer(QuestIdempotencyKeys::QuestId))
                        .col(big_integer(QuestIdempotencyKeys::CreatedAtMs))
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(PlayerQuests::Table)
                        .if_not_exists()
                        .col(big_integer(PlayerQuests::PlayerId))
                        .col(big_integer(PlayerQuests::QuestId))
                        .col(string_len(PlayerQuests::Status, 16))
                        .col(big_integer(PlayerQuests::AcceptedAtMs))
                        .col(big_integer(PlayerQuests::UpdatedAtMs))
                        .col(big_integer_null(PlayerQuests::CompletedAtMs))
                        .col(text(PlayerQuests::Progress))
                        .col(big_integer(PlayerQuests::Version))
                        .primary_key(Index::create().col(PlayerQuests::PlayerId).col(PlayerQuests::QuestId))
                        .foreign_key(
                            ForeignKey::create()
                                .name("player_quests_quest_id_fkey")
                                .from(PlayerQuests::Table, PlayerQuests::QuestId)
                                .to(Quests::Table, Quests::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            // A player's quest log filtered by status, in quest id order.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("player_quests_player_id_status_quest_id")
                        .table(PlayerQuests::Table)
                        .col(PlayerQuests::PlayerId)
                        .col(PlayerQuests::Status)
                        .col(PlayerQuests::QuestId)
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(PlayerQuests::Table).to_owned())
                .await?;
            manager
                .drop_table(Table::drop().table(QuestIdempotencyKeys::Table).to_owned())
                .await?;
            manager
                .drop_table(Table::drop().table(QuestObjectives::Table).to_owned())
                .await?;
            manager
                .drop_table(Table::drop().table(Quests::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}

mod m20261203_000001_create_reward_outbox {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    // Named by hand: see the module's comment.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000001_create_reward_outbox"
        }
    }

    #[derive(DeriveIden)]
    enum RewardOutbox {
        Table,
        Id,
        GrantId,
        Kind,
        PlayerId,
        QuestId,
        Payload,
        Status,
        Attempts,
        NextAttemptAtMs,
        LastError,
        CreatedAtMs,
        DeliveredAtMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(RewardOutbox::Table)
                        .if_not_exists()
                        .col(big_pk_auto(RewardOutbox::Id))
                        // One delivery per grant id and kind: a completion
                        // written twice queues it once.
                        .col(string_len(RewardOutbox::GrantId, 128))
                        .col(string_len(RewardOutbox::Kind, 16))
                        .col(big_integer(RewardOutbox::PlayerId))
                        .col(big_integer(RewardOutbox::QuestId))
                        .col(text(RewardOutbox::Payload))
                        .col(string_len(RewardOutbox::Status, 16))
                        .col(integer(RewardOutbox::Attempts))
                        .col(big_integer(RewardOutbox::NextAttemptAtMs))
                        .col(text_null(RewardOutbox::LastError))
                        .col(big_integer(RewardOutbox::CreatedAtMs))
                        .col(big_integer_null(RewardOutbox::DeliveredAtMs))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .unique()
                        .name("reward_outbox_grant_id_kind")
                        .table(RewardOutbox::Table)
                        .col(RewardOutbox::GrantId)
                        .col(RewardOutbox::Kind)
                        .to_owned(),
                )
                .await?;
            // The relay reads the pending rows that are due, oldest first,
            // and counts the pending ones.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("reward_outbox_status_next_attempt_at_ms")
                        .table(RewardOutbox::Table)
                        .col(RewardOutbox::Status)
                        .col(RewardOutbox::NextAttemptAtMs)
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(RewardOutbox::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}

mod m20261204_000001_add_quest_reward_amounts {
    use sea_orm_migration::prelude::*;

    pub struct Migration;

    // Named by hand: see the module's comment.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261204_000001_add_quest_reward_amounts"
        }
    }

    #[derive(DeriveIden)]
    enum Quests {
        Table,
        RewardStanding,
        RewardDisposition,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // NULL: the quest gives the default amount. One column per
            // statement: SQLite alters one thing at a time.
            for column in [Quests::RewardStanding, Quests::RewardDisposition] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Quests::Table)
                            .add_column_if_not_exists(ColumnDef::new(column).integer().null())
                            .to_owned(),
                    )
                    .await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for column in [Quests::RewardStanding, Quests::RewardDisposition] {
                manager
                    .alter_table(Table::alter().table(Quests::Table).drop_column(column).to_owned())
                    .await?;
            }
            Ok(())
        }
    }
}

mod m20261206_000001_player_quests_updated_in_place {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::sea_orm::DbBackend;

    pub struct Migration;

    // Named by hand: see the module's comment.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261206_000001_player_quests_updated_in_place"
        }
    }

    #[derive(DeriveIden)]
    enum PlayerQuests {
        Table,
        PlayerId,
        Status,
        QuestId,
    }

    const STATUS_INDEX: &str = "player_quests_player_id_status_quest_id";

    /// Accepting and abandoning change a player quest's status, many times
    /// a second under load. While an index held the status, every change
    /// was a new row version with a new entry in both indexes, and each
    /// lookup of the row walked every version left behind until a vacuum
    /// came (never, with autovacuum off): accepts slowed down minute by
    /// minute. Without it, Postgres updates the row in place on its page
    /// (a heap-only tuple) and prunes old versions as it reads the page;
    /// the free fifth of each page is the room that takes. A player's log
    /// by status reads the primary key's `player_id` prefix and filters
    /// the few rows it finds.
    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_index(
                    Index::drop()
                        .if_exists()
                        .name(STATUS_INDEX)
                        .table(PlayerQuests::Table)
                        .to_owned(),
                )
                .await?;
            if manager.get_database_backend() == DbBackend::Postgres {
                manager
                    .get_connection()
                    .execute_unprepared("ALTER TABLE player_quests SET (fillfactor = 80)")
                    .await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            if manager.get_database_backend() == DbBackend::Postgres {
                manager
                    .get_connection()
                    .execute_unprepared("ALTER TABLE player_quests RESET (fillfactor)")
                    .await?;
            }
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(STATUS_INDEX)
                        .table(PlayerQuests::Table)
                        .col(PlayerQuests::PlayerId)
                        .col(PlayerQuests::Status)
                        .col(PlayerQuests::QuestId)
                        .to_owned(),
                )
                .await?;
            Ok(())
        }
    }
}
