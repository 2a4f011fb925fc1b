//! The player service's tables. Each migration is named by hand:
//! `DeriveMigrationName` would name every migration of this file after the
//! file (`migration`).

use sea_orm_migration::prelude::*;

/// Runs the player service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_create_player_tables::Migration),
            Box::new(m20261203_000002_create_faction_standings::Migration),
        ]
    }
}

mod m20261203_000001_create_player_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000001_create_player_tables"
        }
    }

    #[derive(DeriveIden)]
    enum Players {
        Table,
        Id,
        DeviceId,
        DisplayName,
        DisplayNameKey,
        Xp,
        Gold,
        SessionsRevokedAtMs,
        Version,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum PlayerSessions {
        Table,
        Id,
        PlayerId,
        Generation,
        RevokedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum Items {
        Table,
        Id,
        Key,
        Name,
        Kind,
        Rarity,
        MaxStack,
        Tradeable,
        CreatedAtMs,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum InventoryStacks {
        Table,
        PlayerId,
        ItemId,
        Quantity,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum Ledger {
        Table,
        Id,
        PlayerId,
        Kind,
        ItemId,
        Amount,
        BalanceAfter,
        Reason,
        SourceId,
        GrantId,
        CreatedAtMs,
    }

    #[derive(DeriveIden)]
    enum Grants {
        Table,
        GrantId,
        PlayerId,
        Fingerprint,
        Outcome,
        CreatedAtMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Players::Table)
                        .if_not_exists()
                        .col(big_pk_auto(Players::Id))
                        .col(string_len_uniq(Players::DeviceId, 128))
                        .col(string_len_null(Players::DisplayName, 128))
                        // NULLs never collide: players without a name are many.
                        .col(string_len_null(Players::DisplayNameKey, 128).unique_key())
                        .col(big_integer(Players::Xp).default(0))
                        .col(big_integer(Players::Gold).default(0))
                        .col(big_integer(Players::SessionsRevokedAtMs).default(0))
                        .col(big_integer(Players::Version).default(0))
                        .col(big_integer(Players::CreatedAtMs))
                        .col(big_integer(Players::UpdatedAtMs))
                        .check(Expr::col(Players::Gold).gte(0))
                        .check(Expr::col(Players::Xp).gte(0))
                        .to_owned(),
                )
                .await?;
            // Start-up of a gateway reads the recent player-wide revocations.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("players_sessions_revoked_at")
                        .table(Players::Table)
                        .col(Players::SessionsRevokedAtMs)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(PlayerSessions::Table)
                        .if_not_exists()
                        .col(string_len(PlayerSessions::Id, 64).primary_key())
                        .col(big_integer(PlayerSessions::PlayerId))
                        .col(big_integer(PlayerSessions::Generation))
                        .col(big_integer_null(PlayerSessions::RevokedAtMs))
                        .col(big_integer(PlayerSessions::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("player_sessions_revoked_at")
                        .table(PlayerSessions::Table)
                        .col(PlayerSessions::RevokedAtMs)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(Items::Table)
                        .if_not_exists()
                        .col(big_integer(Items::Id).primary_key())
                        .col(string_len_uniq(Items::Key, 32))
                        .col(string_len(Items::Name, 256))
                        .col(string_len(Items::Kind, 32))
                        .col(string_len(Items::Rarity, 16))
                        .col(integer(Items::MaxStack))
                        .col(boolean(Items::Tradeable))
                        .col(big_integer(Items::CreatedAtMs))
                        .col(big_integer(Items::UpdatedAtMs))
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(InventoryStacks::Table)
                        .if_not_exists()
                        .col(big_integer(InventoryStacks::PlayerId))
                        .col(big_integer(InventoryStacks::ItemId))
                        .col(big_integer(InventoryStacks::Quantity))
                        .col(big_integer(InventoryStacks::UpdatedAtMs))
                        .primary_key(
                            Index::create()
                                .col(InventoryStacks::PlayerId)
                                .col(InventoryStacks::ItemId),
                        )
                        .check(Expr::col(InventoryStacks::Quantity).gt(0))
                        .foreign_key(
                            ForeignKey::create()
                                .name("inventory_stacks_player_id_fkey")
                                .from(InventoryStacks::Table, InventoryStacks::PlayerId)
                                .to(Players::Table, Players::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name("inventory_stacks_item_id_fkey")
                                .from(InventoryStacks::Table, InventoryStacks::ItemId)
                                .to(Items::Table, Items::Id)
                                .on_delete(ForeignKeyAction::Restrict),
                        )
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(Ledger::Table)
                        .if_not_exists()
                        .col(big_pk_auto(Ledger::Id))
                        .col(big_integer(Ledger::PlayerId))
                        .col(string_len(Ledger::Kind, 8))
                        .col(big_integer_null(Ledger::ItemId))
                        .col(big_integer(Ledger::Amount))
                        .col(big_integer(Ledger::BalanceAfter))
                        .col(string_len(Ledger::Reason, 1024))
                        .col(string_len(Ledger::SourceId, 512))
                        .col(string_len_null(Ledger::GrantId, 128))
                        .col(big_integer(Ledger::CreatedAtMs))
                        .foreign_key(
                            ForeignKey::create()
                                .name("ledger_player_id_fkey")
                                .from(Ledger::Table, Ledger::PlayerId)
                                .to(Players::Table, Players::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
            // A player's ledger in id order.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("ledger_player_id_id")
                        .table(Ledger::Table)
                        .col(Ledger::PlayerId)
                        .col(Ledger::Id)
                        .to_owned(),
                )
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(Grants::Table)
                        .if_not_exists()
                        .col(string_len(Grants::GrantId, 128).primary_key())
                        .col(big_integer(Grants::PlayerId))
                        .col(string_len(Grants::Fingerprint, 32))
                        .col(text(Grants::Outcome))
                        .col(big_integer(Grants::CreatedAtMs))
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for table in [
                Grants::Table.into_iden(),
                Ledger::Table.into_iden(),
                InventoryStacks::Table.into_iden(),
                Items::Table.into_iden(),
                PlayerSessions::Table.into_iden(),
                Players::Table.into_iden(),
            ] {
                manager.drop_table(Table::drop().table(table).to_owned()).await?;
            }
            Ok(())
        }
    }
}

mod m20261203_000002_create_faction_standings {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000002_create_faction_standings"
        }
    }

    #[derive(DeriveIden)]
    enum FactionStandings {
        Table,
        PlayerId,
        FactionId,
        Standing,
        UpdatedAtMs,
    }

    #[derive(DeriveIden)]
    enum Ledger {
        Table,
        FactionId,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(FactionStandings::Table)
                        .if_not_exists()
                        .col(big_integer(FactionStandings::PlayerId))
                        .col(big_integer(FactionStandings::FactionId))
                        .col(integer(FactionStandings::Standing))
                        .col(big_integer(FactionStandings::UpdatedAtMs))
                        .primary_key(
                            Index::create()
                                .col(FactionStandings::PlayerId)
                                .col(FactionStandings::FactionId),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(Ledger::Table)
                        .add_column(big_integer_null(Ledger::FactionId))
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(Ledger::Table)
                        .drop_column(Ledger::FactionId)
                        .to_owned(),
                )
                .await?;
            manager
                .drop_table(Table::drop().table(FactionStandings::Table).to_owned())
                .await?;
            Ok(())
        }
    }
}
