//! The catalog, inventories, the ledger, and changes of balances.
//!
//! A change is one transaction: its first statement bumps the player row's
//! version, which takes the row's lock on Postgres and the database's
//! write lock on SQLite before anything is read, so concurrent changes of
//! one player run one after the other and each reads the balances the
//! previous one left. Then the balances are read, the change applied
//! (`domain`), and the player row, the stacks, the ledger rows and, under
//! a grant id, the grant row (with the outcome, for replays) written.

use std::collections::BTreeMap;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use vdm_kit::idempotency::{Created, Inserted, check_fingerprint, create_or_replay, is_unique_violation, key_refused};

use super::entities::{grant, item, ledger, player, stack, standing};
use super::{PlayerStore, abort};
use crate::domain::{Balances, Change, Item, LedgerEntry, LedgerKind, NewItem, Order, Outcome, Page, Rarity, Standing};
use crate::error::{PlayerError, PlayerResult};

/// The prefix of the item columns in the inventory's joined rows.
const ITEM_PREFIX: &str = "item_";

impl PlayerStore {
    /// Creates or replaces a catalog item (its creation time is kept).
    pub async fn put_item(&self, new: &NewItem, now_ms: i64) -> PlayerResult<Item> {
        let written = item::Entity::insert(item::ActiveModel {
            id: Set(new.id),
            key: Set(new.key.clone()),
            name: Set(new.name.clone()),
            kind: Set(new.kind.clone()),
            rarity: Set(new.rarity.as_str().to_owned()),
            max_stack: Set(i32::try_from(new.max_stack).unwrap_or(i32::MAX)),
            tradeable: Set(new.tradeable),
            created_at_ms: Set(now_ms),
            updated_at_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::column(item::Column::Id)
                .update_columns([
                    item::Column::Key,
                    item::Column::Name,
                    item::Column::Kind,
                    item::Column::Rarity,
                    item::Column::MaxStack,
                    item::Column::Tradeable,
                    item::Column::UpdatedAtMs,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await;
        match written {
            Ok(_) => {}
            // The id's row was upserted, so the clash is another item's key.
            Err(err) if is_unique_violation(&err) => return Err(PlayerError::ItemKeyTaken(new.key.clone())),
            Err(err) => return Err(err.into()),
        }
        self.get_item(new.id).await?.ok_or(PlayerError::ItemNotFound(new.id))
    }

    /// Reads one catalog item.
    pub async fn get_item(&self, id: i64) -> PlayerResult<Option<Item>> {
        item::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(to_item)
            .transpose()
    }

    /// Reads one page of the catalog in id order.
    pub async fn list_items(&self, page: Page) -> PlayerResult<(Vec<Item>, Option<String>)> {
        let rows = item::Entity::find()
            .filter(item::Column::Id.gt(page.after_id()))
            .order_by_asc(item::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        Ok((rows.into_iter().map(to_item).collect::<PlayerResult<_>>()?, next))
    }

    /// Reads a player's stacks with their items, in item id order (`None`:
    /// no such player). Two queries, whatever the number of stacks.
    pub async fn inventory(&self, player_id: i64) -> PlayerResult<Option<Vec<(Item, i64)>>> {
        // One statement: the player's row left-joined to its stacks and
        // their items. No row: no such player; one row of nulls: it holds
        // nothing.
        let mut query = Query::select();
        query.column((player::Entity, player::Column::Id)).expr_as(
            Expr::col((stack::Entity, stack::Column::Quantity)),
            Alias::new("quantity"),
        );
        for column in item::Column::iter() {
            query.expr_as(
                Expr::col((item::Entity, column)),
                Alias::new(format!("{ITEM_PREFIX}{}", column.as_str())),
            );
        }
        query
            .from(player::Entity)
            .left_join(
                stack::Entity,
                Expr::col((stack::Entity, stack::Column::PlayerId)).equals((player::Entity, player::Column::Id)),
            )
            .left_join(
                item::Entity,
                Expr::col((item::Entity, item::Column::Id)).equals((stack::Entity, stack::Column::ItemId)),
            )
            .and_where(Expr::col((player::Entity, player::Column::Id)).eq(player_id))
            .order_by((stack::Entity, stack::Column::ItemId), sea_orm::Order::Asc);
        let rows = self.db.query_all(&query).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut held = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(quantity) = row.try_get::<Option<i64>>("", "quantity")? else {
                continue;
            };
            let item = item::Model::from_query_result_optional(&row, ITEM_PREFIX)?
                .ok_or_else(|| PlayerError::Corrupt(format!("a stack of player {player_id} names a missing item")))?;
            held.push((to_item(item)?, quantity));
        }
        Ok(Some(held))
    }

    /// Reads one page of a player's ledger in the page's order.
    pub async fn ledger(&self, player_id: i64, page: Page) -> PlayerResult<(Vec<LedgerEntry>, Option<String>)> {
        let mut query = ledger::Entity::find().filter(ledger::Column::PlayerId.eq(player_id));
        if let Some(from) = page.from_id {
            query = match page.order {
                Order::Descending => query.filter(ledger::Column::Id.lt(from)),
                Order::Ascending => query.filter(ledger::Column::Id.gt(from)),
            };
        }
        query = match page.order {
            Order::Descending => query.order_by_desc(ledger::Column::Id),
            Order::Ascending => query.order_by_asc(ledger::Column::Id),
        };
        let rows = query.limit(u64::from(page.limit) + 1).all(&self.db).await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        let entries = rows
            .into_iter()
            .map(|row| {
                let kind = LedgerKind::parse(&row.kind)
                    .ok_or_else(|| PlayerError::Corrupt(format!("unknown ledger kind {:?}", row.kind)))?;
                Ok(LedgerEntry {
                    id: row.id,
                    player_id: row.player_id,
                    kind,
                    item_id: row.item_id,
                    faction_id: row.faction_id,
                    amount: row.amount,
                    balance_after: row.balance_after,
                    reason: row.reason,
                    source_id: row.source_id,
                    grant_id: row.grant_id,
                    created_at_ms: row.created_at_ms,
                })
            })
            .collect::<PlayerResult<Vec<_>>>()?;
        Ok((entries, next))
    }

    /// Applies a change of balances, once per grant id: with a grant id
    /// seen before, the first outcome is returned (and the same id with
    /// another payload refused).
    pub async fn apply(&self, change: &Change, now_ms: i64) -> PlayerResult<Created<Outcome>> {
        let fingerprint = change.fingerprint();
        create_or_replay(
            change.grant_id.as_deref(),
            |grant_id| self.replay(grant_id, &fingerprint),
            || self.apply_once(change, &fingerprint, now_ms),
        )
        .await
    }

    async fn replay(&self, grant_id: &str, fingerprint: &str) -> PlayerResult<Option<Outcome>> {
        let Some(row) = grant::Entity::find_by_id(grant_id.to_owned()).one(&self.db).await? else {
            return Ok(None);
        };
        check_fingerprint(grant_id, &row.fingerprint, fingerprint)
            .map_err(|_| PlayerError::GrantConflict(grant_id.to_owned()))?;
        let mut outcome: Outcome = serde_json::from_str(&row.outcome)
            .map_err(|e| PlayerError::Corrupt(format!("outcome of grant {grant_id:?}: {e}")))?;
        outcome.replayed = true;
        Ok(Some(outcome))
    }

    /// The change's transaction.
    async fn apply_once(
        &self,
        change: &Change,
        fingerprint: &str,
        now_ms: i64,
    ) -> PlayerResult<Inserted<Outcome, PlayerError>> {
        let player_id = change.player_id;
        let txn = self.db.begin().await?;
        // First statement: the lock (see the module's comment).
        let locked = player::Entity::update_many()
            .col_expr(player::Column::Version, Expr::col(player::Column::Version).add(1))
            .filter(player::Column::Id.eq(player_id))
            .exec(&txn)
            .await?;
        if locked.rows_affected == 0 {
            return abort(txn, PlayerError::PlayerNotFound(player_id)).await;
        }
        let Some(row) = player::Entity::find_by_id(player_id).one(&txn).await? else {
            return abort(txn, PlayerError::PlayerNotFound(player_id)).await;
        };
        let (before, max_stacks) = match self.stacks_of(&txn, change).await {
            Ok(found) => found,
            Err(err) => return abort(txn, err).await,
        };
        let standings = match self.standings_of(&txn, change).await {
            Ok(found) => found,
            Err(err) => return abort(txn, err).await,
        };
        let before = Balances {
            gold: row.gold,
            xp: row.xp,
            stacks: before,
            standings,
        };
        let applied = match change.apply(&before, &max_stacks) {
            Ok(applied) => applied,
            Err(err) => return abort(txn, err).await,
        };
        let after = &applied.after;

        player::Entity::update_many()
            .col_expr(player::Column::Gold, Expr::value(after.gold))
            .col_expr(player::Column::Xp, Expr::value(after.xp))
            .col_expr(player::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(player::Column::Id.eq(player_id))
            .exec(&txn)
            .await?;
        for (item_id, quantity) in &after.stacks {
            write_stack(&txn, player_id, *item_id, *quantity, now_ms).await?;
        }
        for (faction_id, value) in &after.standings {
            write_standing(&txn, player_id, *faction_id, *value, now_ms).await?;
        }
        if !applied.entries.is_empty() {
            ledger::Entity::insert_many(applied.entries.iter().map(|entry| ledger::ActiveModel {
                player_id: Set(player_id),
                kind: Set(entry.kind.as_str().to_owned()),
                item_id: Set(entry.item_id),
                faction_id: Set(entry.faction_id),
                amount: Set(entry.amount),
                balance_after: Set(entry.balance_after),
                reason: Set(change.reason.clone()),
                source_id: Set(change.source_id.clone()),
                grant_id: Set(change.grant_id.clone()),
                created_at_ms: Set(now_ms),
                ..Default::default()
            }))
            .exec_without_returning(&txn)
            .await?;
        }

        let mut updated = row.clone();
        updated.gold = after.gold;
        updated.xp = after.xp;
        updated.updated_at_ms = now_ms;
        let outcome = Outcome {
            profile: self.profile(&updated),
            previous_level: self.levels.level(row.xp),
            replayed: false,
        };
        if let Some(grant_id) = &change.grant_id {
            let encoded = serde_json::to_string(&outcome)
                .map_err(|e| PlayerError::Corrupt(format!("outcome does not encode: {e}")))?;
            let inserted = grant::Entity::insert(grant::ActiveModel {
                grant_id: Set(grant_id.clone()),
                player_id: Set(player_id),
                fingerprint: Set(fingerprint.to_owned()),
                outcome: Set(encoded),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                // A concurrent call with the same grant id committed first:
                // this one writes nothing, and answers with that one's result.
                return key_refused(txn, err).await;
            }
        }
        txn.commit().await?;
        Ok(Inserted::Done(outcome))
    }

    /// The standing of the player with every faction of `change` (0 where
    /// it has none yet).
    async fn standings_of(&self, txn: &DatabaseTransaction, change: &Change) -> PlayerResult<BTreeMap<i64, i32>> {
        if change.amounts.standings.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut held: BTreeMap<i64, i32> = change.amounts.standings.keys().map(|id| (*id, 0)).collect();
        let rows = standing::Entity::find()
            .filter(standing::Column::PlayerId.eq(change.player_id))
            .filter(standing::Column::FactionId.is_in(change.amounts.standings.keys().copied()))
            .all(txn)
            .await?;
        for row in rows {
            held.insert(row.faction_id, row.standing);
        }
        Ok(held)
    }

    /// A player's standing with every faction it has one with, in faction
    /// id order (`None`: no such player).
    pub async fn standings(&self, player_id: i64) -> PlayerResult<Option<Vec<Standing>>> {
        if player::Entity::find_by_id(player_id).one(&self.db).await?.is_none() {
            return Ok(None);
        }
        let rows = standing::Entity::find()
            .filter(standing::Column::PlayerId.eq(player_id))
            .order_by_asc(standing::Column::FactionId)
            .all(&self.db)
            .await?;
        Ok(Some(
            rows.into_iter()
                .map(|row| Standing {
                    faction_id: row.faction_id,
                    standing: row.standing,
                    updated_at_ms: row.updated_at_ms,
                })
                .collect(),
        ))
    }

    /// The units held and the stack limit of every item of `change`;
    /// an item not in the catalog is not found.
    async fn stacks_of(
        &self,
        txn: &DatabaseTransaction,
        change: &Change,
    ) -> PlayerResult<(BTreeMap<i64, i64>, BTreeMap<i64, i64>)> {
        if change.amounts.items.is_empty() {
            return Ok((BTreeMap::new(), BTreeMap::new()));
        }
        let ids: Vec<i64> = change.amounts.items.keys().copied().collect();
        let max_stacks: BTreeMap<i64, i64> = item::Entity::find()
            .filter(item::Column::Id.is_in(ids.iter().copied()))
            .all(txn)
            .await?
            .into_iter()
            .map(|row| (row.id, i64::from(row.max_stack)))
            .collect();
        if let Some(unknown) = ids.iter().find(|id| !max_stacks.contains_key(id)) {
            return Err(PlayerError::ItemNotFound(*unknown));
        }
        let mut held: BTreeMap<i64, i64> = ids.iter().map(|id| (*id, 0)).collect();
        let rows = stack::Entity::find()
            .filter(stack::Column::PlayerId.eq(change.player_id))
            .filter(stack::Column::ItemId.is_in(ids))
            .all(txn)
            .await?;
        for row in rows {
            held.insert(row.item_id, row.quantity);
        }
        Ok((held, max_stacks))
    }
}

/// Writes one stack's new quantity (deleting it at 0).
async fn write_stack(
    txn: &DatabaseTransaction,
    player_id: i64,
    item_id: i64,
    quantity: i64,
    now_ms: i64,
) -> PlayerResult<()> {
    if quantity == 0 {
        stack::Entity::delete_many()
            .filter(stack::Column::PlayerId.eq(player_id))
            .filter(stack::Column::ItemId.eq(item_id))
            .exec(txn)
            .await?;
        return Ok(());
    }
    stack::Entity::insert(stack::ActiveModel {
        player_id: Set(player_id),
        item_id: Set(item_id),
        quantity: Set(quantity),
        updated_at_ms: Set(now_ms),
    })
    .on_conflict(
        OnConflict::columns([stack::Column::PlayerId, stack::Column::ItemId])
            .update_columns([stack::Column::Quantity, stack::Column::UpdatedAtMs])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Writes one standing's new value.
async fn write_standing(
    txn: &DatabaseTransaction,
    player_id: i64,
    faction_id: i64,
    value: i32,
    now_ms: i64,
) -> PlayerResult<()> {
    standing::Entity::insert(standing::ActiveModel {
        player_id: Set(player_id),
        faction_id: Set(faction_id),
        standing: Set(value),
        updated_at_ms: Set(now_ms),
    })
    .on_conflict(
        OnConflict::columns([standing::Column::PlayerId, standing::Column::FactionId])
            .update_columns([standing::Column::Standing, standing::Column::UpdatedAtMs])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn to_item(row: item::Model) -> PlayerResult<Item> {
    let rarity = Rarity::parse(&row.rarity)
        .ok_or_else(|| PlayerError::Corrupt(format!("item {} has unknown rarity {:?}", row.id, row.rarity)))?;
    Ok(Item {
        id: row.id,
        key: row.key,
        name: row.name,
        kind: row.kind,
        rarity,
        max_stack: u32::try_from(row.max_stack).unwrap_or(0),
        tradeable: row.tradeable,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}
