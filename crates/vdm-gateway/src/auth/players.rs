//! Player accounts and their session families. The gateway owns these
//! tables (schema `gateway`).
//!
//! - `players`: one per device, created on first sign-in; the device →
//!   player mapping never changes, so it is memoized in process after the
//!   first lookup. `sessions_revoked_at_ms` revokes every session of the
//!   player issued until then (sign out everywhere, or an operator's call).
//! - `sessions`: a session family (one sign-in and the refreshes after it)
//!   once it has been refreshed or revoked: its refresh generation, so a
//!   refresh token works once and a reused one revokes the family. A
//!   family that was never refreshed has no row (sign-in writes nothing
//!   beyond the player).

use std::time::Duration;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, SqlErr};

use crate::auth::sessions::Revocation;
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
        /// Sessions issued until then are revoked (0: none).
        pub sessions_revoked_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `sessions` table.
pub mod session {
    use sea_orm::entity::prelude::*;

    /// A `sessions` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// The family id (the `sid` claim).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub player_id: i64,
        /// The generation of the one refresh token that is valid now.
        pub generation: i64,
        /// When the family was revoked.
        pub revoked_at_ms: Option<i64>,
        pub updated_at_ms: i64,
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
            vec![
                Box::new(m20261127_000001_create_players::Migration),
                Box::new(m20261202_000001_create_sessions::Migration),
            ]
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

    mod m20261202_000001_create_sessions {
        use sea_orm_migration::prelude::*;
        use sea_orm_migration::schema::*;

        pub struct Migration;

        // Named by hand: `DeriveMigrationName` names a migration after its
        // file, and the first migration of this file already has that name.
        impl MigrationName for Migration {
            fn name(&self) -> &str {
                "m20261202_000001_create_sessions"
            }
        }

        #[derive(DeriveIden)]
        enum Players {
            Table,
            SessionsRevokedAtMs,
        }

        #[derive(DeriveIden)]
        enum Sessions {
            Table,
            Id,
            PlayerId,
            Generation,
            RevokedAtMs,
            UpdatedAtMs,
        }

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Players::Table)
                            .add_column(big_integer(Players::SessionsRevokedAtMs).default(0))
                            .to_owned(),
                    )
                    .await?;
                manager
                    .create_table(
                        Table::create()
                            .table(Sessions::Table)
                            .if_not_exists()
                            .col(string_len(Sessions::Id, 64).primary_key())
                            .col(big_integer(Sessions::PlayerId))
                            .col(big_integer(Sessions::Generation))
                            .col(big_integer_null(Sessions::RevokedAtMs))
                            .col(big_integer(Sessions::UpdatedAtMs))
                            .to_owned(),
                    )
                    .await?;
                // Start-up reads the recent revocations.
                manager
                    .create_index(
                        Index::create()
                            .name("sessions_revoked_at")
                            .table(Sessions::Table)
                            .col(Sessions::RevokedAtMs)
                            .to_owned(),
                    )
                    .await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager
                    .drop_table(Table::drop().table(Sessions::Table).to_owned())
                    .await?;
                manager
                    .alter_table(
                        Table::alter()
                            .table(Players::Table)
                            .drop_column(Players::SessionsRevokedAtMs)
                            .to_owned(),
                    )
                    .await
            }
        }
    }
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one: this is the next generation.
    Rotated(i64),
    /// The family (or every session of the player) was revoked.
    Revoked,
    /// The token was valid once but has been used already: the family is
    /// revoked now.
    Reused,
    /// The player does not exist.
    NoPlayer,
}

/// Player accounts.
#[derive(Clone)]
pub struct PlayerStore {
    db: DatabaseConnection,
    by_device: moka::future::Cache<String, i64>,
    /// Players this replica registered with the player service: a device
    /// signing in again skips that call (registration is idempotent, so
    /// forgetting one only costs a call).
    registered: moka::future::Cache<i64, ()>,
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
            registered: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// Whether this replica registered `player_id` with the player
    /// service since it started.
    pub fn is_registered(&self, player_id: i64) -> bool {
        self.registered.contains_key(&player_id)
    }

    /// Remembers that `player_id` is registered with the player service.
    pub async fn mark_registered(&self, player_id: i64) {
        self.registered.insert(player_id, ()).await;
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
                    sessions_revoked_at_ms: Set(0),
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

    /// Moves a session family from refresh generation `generation` (the
    /// presented token's) to the next, if that token is the current one.
    ///
    /// Each step is one conditional statement, so two refreshes racing with
    /// the same token cannot both win: the loser sees a reuse.
    pub async fn rotate(&self, player_id: i64, sid: &str, generation: i64, issued_ms: i64) -> GatewayResult<Rotation> {
        let Some(player) = entity::Entity::find_by_id(player_id).one(&self.db).await? else {
            return Ok(Rotation::NoPlayer);
        };
        if issued_ms <= player.sessions_revoked_at_ms {
            return Ok(Rotation::Revoked);
        }
        let now = vdm_kit::now_ms();
        if generation == 0 {
            // The family's first refresh creates its row.
            let inserted = session::Entity::insert(session::ActiveModel {
                id: Set(sid.to_owned()),
                player_id: Set(player_id),
                generation: Set(1),
                revoked_at_ms: Set(None),
                updated_at_ms: Set(now),
            })
            .on_conflict(OnConflict::column(session::Column::Id).do_nothing().to_owned())
            .exec_without_returning(&self.db)
            .await?;
            if inserted == 1 {
                return Ok(Rotation::Rotated(1));
            }
        } else {
            let moved = session::Entity::update_many()
                .col_expr(session::Column::Generation, Expr::value(generation + 1))
                .col_expr(session::Column::UpdatedAtMs, Expr::value(now))
                .filter(session::Column::Id.eq(sid))
                .filter(session::Column::PlayerId.eq(player_id))
                .filter(session::Column::Generation.eq(generation))
                .filter(session::Column::RevokedAtMs.is_null())
                .exec(&self.db)
                .await?;
            if moved.rows_affected == 1 {
                return Ok(Rotation::Rotated(generation + 1));
            }
        }
        let row = session::Entity::find_by_id(sid.to_owned()).one(&self.db).await?;
        match row {
            Some(row) if row.player_id != player_id => Ok(Rotation::Revoked),
            Some(row) if row.revoked_at_ms.is_some() => Ok(Rotation::Revoked),
            // A generation that was current once: someone else holds the
            // newer token. Either it was stolen or this one was; end both.
            Some(row) if generation < row.generation => {
                self.revoke_session(player_id, sid).await?;
                Ok(Rotation::Reused)
            }
            // A generation the family never reached: forged or from a
            // rolled-back database. Refuse it without ending the family.
            _ => Ok(Rotation::Revoked),
        }
    }

    /// Revokes one session family (sign out).
    pub async fn revoke_session(&self, player_id: i64, sid: &str) -> GatewayResult<()> {
        let now = vdm_kit::now_ms();
        session::Entity::insert(session::ActiveModel {
            id: Set(sid.to_owned()),
            player_id: Set(player_id),
            generation: Set(0),
            revoked_at_ms: Set(Some(now)),
            updated_at_ms: Set(now),
        })
        .on_conflict(
            OnConflict::column(session::Column::Id)
                .update_columns([session::Column::RevokedAtMs, session::Column::UpdatedAtMs])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Revokes every session of a player issued until now; `false` when
    /// there is no such player.
    pub async fn revoke_player(&self, player_id: i64, at_ms: i64) -> GatewayResult<bool> {
        let updated = entity::Entity::update_many()
            .col_expr(entity::Column::SessionsRevokedAtMs, Expr::value(at_ms))
            .filter(entity::Column::Id.eq(player_id))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// The revocations made since `since_ms`: session families by id, and
    /// players whose sessions until a time were revoked (loaded at start-up,
    /// since session tokens are checked without a database call).
    pub async fn revocations_since(&self, since_ms: i64) -> GatewayResult<Vec<Revocation>> {
        let sessions = session::Entity::find()
            .filter(session::Column::RevokedAtMs.gt(since_ms))
            .all(&self.db)
            .await?;
        let players = entity::Entity::find()
            .filter(entity::Column::SessionsRevokedAtMs.gt(since_ms))
            .all(&self.db)
            .await?;
        Ok(sessions
            .into_iter()
            .filter_map(|s| {
                Some(Revocation::Session {
                    player_id: s.player_id,
                    sid: s.id,
                    at_ms: s.revoked_at_ms?,
                })
            })
            .chain(players.into_iter().map(|p| Revocation::Player {
                player_id: p.id,
                before_ms: p.sessions_revoked_at_ms,
            }))
            .collect())
    }
}
