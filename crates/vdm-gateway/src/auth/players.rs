//! Player accounts: one per device, created on first sign-in. The gateway
//! owns this table (schema `gateway`); the device → player mapping never
//! changes, so it is memoized in process after the first lookup.

use std::time::Duration;

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, SqlErr};

use crate::error::GatewayResult;

/// The `players` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// A `players` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "players")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub device_id: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The gateway's migrations.
pub mod migration {
    use sea_orm_migration::prelude::*;

    /// Runs the gateway's migrations in order.
    pub struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(m20261127_000001_create_players::Migration)]
        }
    }

    mod m20261127_000001_create_players {
        use sea_orm_migration::prelude::*;
        use sea_orm_migration::schema::*;

        #[derive(DeriveMigrationName)]
        pub struct Migration;

        #[derive(DeriveIden)]
        enum Players {
            Table,
            Id,
            DeviceId,
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
                            .col(big_integer(Players::CreatedAtMs))
                            .to_owned(),
                    )
                    .await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.drop_table(Table::drop().table(Players::Table).to_owned()).await
            }
        }
    }
}

/// Player accounts.
#[derive(Clone)]
pub struct PlayerStore {
    db: DatabaseConnection,
    by_device: moka::future::Cache<String, i64>,
}

impl PlayerStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> PlayerStore {
        PlayerStore {
            db,
            by_device: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// Answers whether the database answers.
    pub async fn ping(&self) -> GatewayResult<()> {
        Ok(self.db.ping().await?)
    }

    /// Returns the player of a device, creating it on first use, and
    /// whether it was created now.
    pub async fn sign_in(&self, device_id: &str) -> GatewayResult<(i64, bool)> {
        if let Some(id) = self.by_device.get(device_id).await {
            return Ok((id, false));
        }
        let (id, created) = match self.find(device_id).await? {
            Some(id) => (id, false),
            None => {
                let inserted = entity::Entity::insert(entity::ActiveModel {
                    device_id: Set(device_id.to_owned()),
                    created_at_ms: Set(vdm_kit::now_ms()),
                    ..Default::default()
                })
                .exec(&self.db)
                .await;
                match inserted {
                    Ok(result) => (result.last_insert_id, true),
                    // Two first sign-ins of one device raced; the other won.
                    Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        (self.find(device_id).await?.ok_or(err)?, false)
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        self.by_device.insert(device_id.to_owned(), id).await;
        Ok((id, created))
    }

    async fn find(&self, device_id: &str) -> GatewayResult<Option<i64>> {
        let row = entity::Entity::find()
            .filter(entity::Column::DeviceId.eq(device_id))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| r.id))
    }

    /// Tells whether a player exists.
    pub async fn exists(&self, player_id: i64) -> GatewayResult<bool> {
        Ok(entity::Entity::find_by_id(player_id).one(&self.db).await?.is_some())
    }
}
