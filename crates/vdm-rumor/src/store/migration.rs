//! The rumor service's tables. Each migration names itself after its module.

use sea_orm_migration::prelude::*;

/// Runs the rumor service's migrations in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261127_000001_create_rumor_tables::Migration)]
    }
}

mod m20261127_000001_create_rumor_tables {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261127_000001_create_rumor_tables"
        }
    }

    #[derive(DeriveIden)]
    enum Rumors {
        Table,
        Id,
        Text,
        OriginNpcId,
        OriginEventId,
        RegionId,
        Truth,
        RootVariantId,
        CreatedAtMs,
        IdempotencyKey,
        Fingerprint,
    }

    #[derive(DeriveIden)]
    enum RumorVariants {
        Table,
        Id,
        RumorId,
        ParentId,
        TellerNpcId,
        ListenerKind,
        ListenerId,
        Text,
        Distortion,
        Truth,
        Transformer,
        CreatedAtMs,
    }

    #[derive(DeriveIden)]
    enum RumorKnowledge {
        Table,
        HolderKind,
        HolderId,
        RumorId,
        VariantId,
        RegionId,
        SinceMs,
    }

    #[derive(DeriveIden)]
    enum RumorTickLeases {
        Table,
        RegionId,
        UntilMs,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Rumors::Table)
                        .if_not_exists()
                        .col(big_pk_auto(Rumors::Id))
                        .col(string_len(Rumors::Text, 2000))
                        .col(big_integer_null(Rumors::OriginNpcId))
                        .col(big_integer_null(Rumors::OriginEventId))
                        .col(big_integer(Rumors::RegionId))
                        .col(float(Rumors::Truth))
                        .col(big_integer(Rumors::RootVariantId))
                        .col(big_integer(Rumors::CreatedAtMs))
                        .col(string_len_null(Rumors::IdempotencyKey, 128))
                        .col(string_len_null(Rumors::Fingerprint, 64))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("rumors_idempotency_key")
                        .table(Rumors::Table)
                        .col(Rumors::IdempotencyKey)
                        .unique()
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(RumorVariants::Table)
                        .if_not_exists()
                        .col(big_pk_auto(RumorVariants::Id))
                        .col(big_integer(RumorVariants::RumorId))
                        .col(big_integer_null(RumorVariants::ParentId))
                        .col(big_integer_null(RumorVariants::TellerNpcId))
                        .col(string_len_null(RumorVariants::ListenerKind, 8))
                        .col(big_integer_null(RumorVariants::ListenerId))
                        .col(string_len(RumorVariants::Text, 2000))
                        .col(float(RumorVariants::Distortion))
                        .col(float(RumorVariants::Truth))
                        .col(string_len(RumorVariants::Transformer, 128))
                        .col(big_integer(RumorVariants::CreatedAtMs))
                        .to_owned(),
                )
                .await?;
            // A rumor's variants are counted and read by rumor.
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("rumor_variants_rumor_id")
                        .table(RumorVariants::Table)
                        .col(RumorVariants::RumorId)
                        .col(RumorVariants::Id)
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(RumorKnowledge::Table)
                        .if_not_exists()
                        .col(string_len(RumorKnowledge::HolderKind, 8))
                        .col(big_integer(RumorKnowledge::HolderId))
                        .col(big_integer(RumorKnowledge::RumorId))
                        .col(big_integer(RumorKnowledge::VariantId))
                        .col(big_integer(RumorKnowledge::RegionId))
                        .col(big_integer(RumorKnowledge::SinceMs))
                        // What someone knows lists newest rumor first along
                        // this key; one variant per rumor per holder.
                        .primary_key(
                            Index::create()
                                .col(RumorKnowledge::HolderKind)
                                .col(RumorKnowledge::HolderId)
                                .col(RumorKnowledge::RumorId),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(RumorTickLeases::Table)
                        .if_not_exists()
                        .col(big_integer(RumorTickLeases::RegionId).primary_key())
                        .col(big_integer(RumorTickLeases::UntilMs))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for table in [
                RumorTickLeases::Table.into_iden(),
                RumorKnowledge::Table.into_iden(),
                RumorVariants::Table.into_iden(),
                Rumors::Table.into_iden(),
            ] {
                manager
                    .drop_table(Table::drop().table(table).if_exists().to_owned())
                    .await?;
            }
            Ok(())
        }
    }
}
