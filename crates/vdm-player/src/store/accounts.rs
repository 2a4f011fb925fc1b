//! Accounts: sign-in by device, session families (refresh-token rotation
//! with reuse detection, revocations), display names.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use vdm_kit::idempotency::is_unique_violation;

use super::PlayerStore;
use super::entities::{player, session};
use crate::domain::{DisplayName, Profile, Revocation, Rotation};
use crate::error::{PlayerError, PlayerResult};

impl PlayerStore {
    /// Returns the player of a device, creating it on first use, and
    /// whether it was created now.
    pub async fn sign_in(&self, device_id: &str, now_ms: i64) -> PlayerResult<(i64, bool)> {
        if let Some(id) = self.find_device(device_id).await? {
            return Ok((id, false));
        }
        let inserted = player::Entity::insert(player::ActiveModel {
            device_id: Set(device_id.to_owned()),
            display_name: Set(None),
            display_name_key: Set(None),
            xp: Set(0),
            gold: Set(0),
            sessions_revoked_at_ms: Set(0),
            version: Set(0),
            created_at_ms: Set(now_ms),
            updated_at_ms: Set(now_ms),
            ..Default::default()
        })
        .exec(&self.db)
        .await;
        match inserted {
            Ok(result) => Ok((result.last_insert_id, true)),
            // Two first sign-ins of one device raced; the other won.
            Err(err) if is_unique_violation(&err) => match self.find_device(device_id).await? {
                Some(id) => Ok((id, false)),
                None => Err(err.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// Registers a player under an id another service chose, with a fresh
    /// profile; `false` when it is registered already. A device registered
    /// under another id is refused.
    pub async fn register(&self, player_id: i64, device_id: &str, now_ms: i64) -> PlayerResult<bool> {
        // Every device sign-in registers its player: most are players seen
        // before, and a read answers them without the write an insert takes
        // (on SQLite, the database's one write lock).
        if self.find_device(device_id).await? == Some(player_id) {
            return Ok(false);
        }
        let inserted = player::Entity::insert(player::ActiveModel {
            id: Set(player_id),
            device_id: Set(device_id.to_owned()),
            display_name: Set(None),
            display_name_key: Set(None),
            xp: Set(0),
            gold: Set(0),
            sessions_revoked_at_ms: Set(0),
            version: Set(0),
            created_at_ms: Set(now_ms),
            updated_at_ms: Set(now_ms),
        })
        .on_conflict(OnConflict::column(player::Column::Id).do_nothing().to_owned())
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(rows) if rows > 0 => {
                self.advance_player_ids().await?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(err) if is_unique_violation(&err) => match self.find_device(device_id).await? {
                Some(id) if id == player_id => Ok(false),
                _ => Err(PlayerError::DeviceTaken(player_id)),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// Moves Postgres's id sequence past the ids registered from outside,
    /// so that a device signed in here later gets a fresh id. (SQLite
    /// numbers new rows after the largest id by itself.)
    pub(super) async fn advance_player_ids(&self) -> PlayerResult<()> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            // Never lowers it: `nextval` is past every id it handed out.
            let sql = "SELECT setval(pg_get_serial_sequence('players', 'id'), \
                       GREATEST((SELECT MAX(id) FROM players), nextval(pg_get_serial_sequence('players', 'id'))))";
            self.db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    pub(super) async fn find_device(&self, device_id: &str) -> PlayerResult<Option<i64>> {
        let row = player::Entity::find()
            .filter(player::Column::DeviceId.eq(device_id))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| r.id))
    }

    /// Reads a player's profile.
    pub async fn get_profile(&self, player_id: i64) -> PlayerResult<Option<Profile>> {
        let row = player::Entity::find_by_id(player_id).one(&self.db).await?;
        Ok(row.map(|row| self.profile(&row)))
    }

    /// Sets a player's display name; another player's name with the same
    /// key is refused.
    pub async fn set_display_name(&self, player_id: i64, name: &DisplayName, now_ms: i64) -> PlayerResult<Profile> {
        let updated = player::Entity::update_many()
            .col_expr(player::Column::DisplayName, Expr::value(name.name.clone()))
            .col_expr(player::Column::DisplayNameKey, Expr::value(name.key.clone()))
            .col_expr(player::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(player::Column::Id.eq(player_id))
            .exec(&self.db)
            .await;
        match updated {
            Ok(result) if result.rows_affected == 0 => return Err(PlayerError::PlayerNotFound(player_id)),
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Err(PlayerError::NameTaken(name.name.clone())),
            Err(err) => return Err(err.into()),
        }
        self.get_profile(player_id)
            .await?
            .ok_or(PlayerError::PlayerNotFound(player_id))
    }

    /// Moves a session family from refresh generation `generation` (the
    /// presented token's) to the next, if that token is the current one.
    ///
    /// Each step is one conditional statement, so two refreshes racing with
    /// the same token cannot both win: the loser sees a reuse.
    pub async fn rotate(
        &self,
        player_id: i64,
        sid: &str,
        generation: i64,
        issued_ms: i64,
        now_ms: i64,
    ) -> PlayerResult<Rotation> {
        let Some(player) = player::Entity::find_by_id(player_id).one(&self.db).await? else {
            return Ok(Rotation::NoPlayer);
        };
        if issued_ms <= player.sessions_revoked_at_ms {
            return Ok(Rotation::Revoked);
        }
        if generation == 0 {
            // The family's first refresh creates its row.
            let inserted = session::Entity::insert(session::ActiveModel {
                id: Set(sid.to_owned()),
                player_id: Set(player_id),
                generation: Set(1),
                revoked_at_ms: Set(None),
                updated_at_ms: Set(now_ms),
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
                .col_expr(session::Column::UpdatedAtMs, Expr::value(now_ms))
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
                self.revoke_session(player_id, sid, now_ms).await?;
                Ok(Rotation::Reused)
            }
            // A generation the family never reached: forged or from a
            // rolled-back database. Refuse it without ending the family.
            _ => Ok(Rotation::Revoked),
        }
    }

    /// Revokes one session family (sign out).
    pub async fn revoke_session(&self, player_id: i64, sid: &str, now_ms: i64) -> PlayerResult<()> {
        session::Entity::insert(session::ActiveModel {
            id: Set(sid.to_owned()),
            player_id: Set(player_id),
            generation: Set(0),
            revoked_at_ms: Set(Some(now_ms)),
            updated_at_ms: Set(now_ms),
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

    /// Revokes every session of a player issued until `at_ms`; `false`
    /// when there is no such player.
    pub async fn revoke_player(&self, player_id: i64, at_ms: i64) -> PlayerResult<bool> {
        let updated = player::Entity::update_many()
            .col_expr(player::Column::SessionsRevokedAtMs, Expr::value(at_ms))
            .filter(player::Column::Id.eq(player_id))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// The revocations made since `since_ms`: session families, and players
    /// whose sessions until a time were revoked.
    pub async fn revocations_since(&self, since_ms: i64) -> PlayerResult<Vec<Revocation>> {
        let sessions = session::Entity::find()
            .filter(session::Column::RevokedAtMs.gt(since_ms))
            .all(&self.db)
            .await?;
        let players = player::Entity::find()
            .filter(player::Column::SessionsRevokedAtMs.gt(since_ms))
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
