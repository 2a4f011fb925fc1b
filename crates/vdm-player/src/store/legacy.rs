//! Importing the accounts a gateway kept before accounts moved here
//! (`vdm migrate accounts`): the gateway's `players` and `sessions` tables,
//! read from its old schema (`gateway`, or its SQLite file), merged into
//! this service's `players` and `player_sessions`.
//!
//! Player ids are kept: the gateway registered every player it signed in
//! here under the gateway's id, and issued tokens name those ids. The merge
//! is idempotent and only ever makes a session stricter (a later refresh
//! generation, a revocation), so running it again, or after some players
//! signed in through the player service, changes nothing it should not.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, Statement};

use super::PlayerStore;
use super::entities::{player, session};
use crate::error::PlayerResult;

/// A row of the gateway's `players` table.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct LegacyPlayer {
    /// The player id tokens name.
    pub id: i64,
    /// The device that signs in as this player.
    pub device_id: String,
    /// When the player was created.
    pub created_at_ms: i64,
    /// Sessions issued until then are revoked (0: none).
    pub sessions_revoked_at_ms: i64,
}

/// A row of the gateway's `sessions` table: a session family that was
/// refreshed or revoked.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct LegacySession {
    /// The family id (the tokens' `sid`).
    pub id: String,
    /// Its player.
    pub player_id: i64,
    /// The refresh generation that is valid now.
    pub generation: i64,
    /// When the family was revoked.
    pub revoked_at_ms: Option<i64>,
    /// When the row last changed.
    pub updated_at_ms: i64,
}

/// What importing found, row by row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Players created here.
    pub players_created: u64,
    /// Players here whose revocation time moved later.
    pub players_updated: u64,
    /// Players here already as the gateway had them.
    pub players_unchanged: u64,
    /// Session families created here.
    pub sessions_created: u64,
    /// Session families here that moved to a later generation or were revoked.
    pub sessions_updated: u64,
    /// Session families here already as strict as the gateway's.
    pub sessions_unchanged: u64,
    /// Rows not imported, and why (a device here under another id, a
    /// session of a player that is not here).
    pub conflicts: Vec<String>,
}

/// Reads the gateway's accounts from its old database; `None` when it has
/// no `players` table (a gateway that never kept accounts, or a fresh
/// install).
pub async fn read_gateway_accounts(
    legacy: &DatabaseConnection,
) -> PlayerResult<Option<(Vec<LegacyPlayer>, Vec<LegacySession>)>> {
    let backend = legacy.get_database_backend();
    let players = LegacyPlayer::find_by_statement(Statement::from_string(
        backend,
        "SELECT id, device_id, created_at_ms, sessions_revoked_at_ms FROM players ORDER BY id",
    ))
    .all(legacy)
    .await;
    let players = match players {
        Ok(players) => players,
        Err(err) if !has_table(legacy, "players").await? => {
            tracing::debug!(error = %err, "no gateway players table");
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    let sessions = if has_table(legacy, "sessions").await? {
        LegacySession::find_by_statement(Statement::from_string(
            backend,
            "SELECT id, player_id, generation, revoked_at_ms, updated_at_ms FROM sessions ORDER BY id",
        ))
        .all(legacy)
        .await?
    } else {
        Vec::new()
    };
    Ok(Some((players, sessions)))
}

/// Whether the connection's schema (its search path on Postgres) has a
/// table of this name.
async fn has_table(db: &DatabaseConnection, table: &str) -> PlayerResult<bool> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
        _ => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await?;
    Ok(row.is_some())
}

impl PlayerStore {
    /// Merges the gateway's accounts into this service's tables.
    pub async fn import_gateway_accounts(
        &self,
        players: &[LegacyPlayer],
        sessions: &[LegacySession],
    ) -> PlayerResult<ImportReport> {
        let mut report = ImportReport::default();
        for legacy in players {
            self.import_player(legacy, &mut report).await?;
        }
        if report.players_created > 0 {
            self.advance_player_ids().await?;
        }
        for legacy in sessions {
            self.import_session(legacy, &mut report).await?;
        }
        Ok(report)
    }

    async fn import_player(&self, legacy: &LegacyPlayer, report: &mut ImportReport) -> PlayerResult<()> {
        if let Some(here) = player::Entity::find_by_id(legacy.id).one(&self.db).await? {
            if here.device_id != legacy.device_id {
                report.conflicts.push(format!(
                    "player {}: the gateway's device is not this service's player {} device",
                    legacy.id, legacy.id
                ));
            } else if here.sessions_revoked_at_ms < legacy.sessions_revoked_at_ms {
                player::Entity::update_many()
                    .col_expr(
                        player::Column::SessionsRevokedAtMs,
                        Expr::value(legacy.sessions_revoked_at_ms),
                    )
                    .filter(player::Column::Id.eq(legacy.id))
                    .exec(&self.db)
                    .await?;
                report.players_updated += 1;
            } else {
                report.players_unchanged += 1;
            }
            return Ok(());
        }
        if let Some(other) = self.find_device(&legacy.device_id).await? {
            report.conflicts.push(format!(
                "player {}: its device signed in here as player {other}",
                legacy.id
            ));
            return Ok(());
        }
        player::Entity::insert(player::ActiveModel {
            id: Set(legacy.id),
            device_id: Set(legacy.device_id.clone()),
            display_name: Set(None),
            display_name_key: Set(None),
            xp: Set(0),
            gold: Set(0),
            sessions_revoked_at_ms: Set(legacy.sessions_revoked_at_ms),
            version: Set(0),
            created_at_ms: Set(legacy.created_at_ms),
            updated_at_ms: Set(legacy.created_at_ms),
        })
        .exec_without_returning(&self.db)
        .await?;
        report.players_created += 1;
        Ok(())
    }

    async fn import_session(&self, legacy: &LegacySession, report: &mut ImportReport) -> PlayerResult<()> {
        if player::Entity::find_by_id(legacy.player_id)
            .one(&self.db)
            .await?
            .is_none()
        {
            report.conflicts.push(format!(
                "session {}: its player {} is not here",
                legacy.id, legacy.player_id
            ));
            return Ok(());
        }
        let Some(here) = session::Entity::find_by_id(legacy.id.clone()).one(&self.db).await? else {
            session::Entity::insert(session::ActiveModel {
                id: Set(legacy.id.clone()),
                player_id: Set(legacy.player_id),
                generation: Set(legacy.generation),
                revoked_at_ms: Set(legacy.revoked_at_ms),
                updated_at_ms: Set(legacy.updated_at_ms),
            })
            .exec_without_returning(&self.db)
            .await?;
            report.sessions_created += 1;
            return Ok(());
        };
        if here.player_id != legacy.player_id {
            report.conflicts.push(format!(
                "session {}: here it belongs to player {}, at the gateway to {}",
                legacy.id, here.player_id, legacy.player_id
            ));
            return Ok(());
        }
        // Only ever stricter: the later generation, the earlier revocation.
        let generation = here.generation.max(legacy.generation);
        let revoked_at_ms = match (here.revoked_at_ms, legacy.revoked_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if generation == here.generation && revoked_at_ms == here.revoked_at_ms {
            report.sessions_unchanged += 1;
            return Ok(());
        }
        session::Entity::update_many()
            .col_expr(session::Column::Generation, Expr::value(generation))
            .col_expr(session::Column::RevokedAtMs, Expr::value(revoked_at_ms))
            .col_expr(
                session::Column::UpdatedAtMs,
                Expr::value(here.updated_at_ms.max(legacy.updated_at_ms)),
            )
            .filter(session::Column::Id.eq(legacy.id.clone()))
            .exec(&self.db)
            .await?;
        report.sessions_updated += 1;
        Ok(())
    }
}
