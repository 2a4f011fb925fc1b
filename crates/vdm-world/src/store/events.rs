//! World events and the regions they touch; a publish with an idempotency
//! key stores the key with the event, in one transaction.

use std::collections::HashMap;

use sea_orm::sea_query::Query;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use vdm_kit::idempotency::{Inserted, check_fingerprint, create_or_replay, key_refused};

use super::entities::{event, event_region, idempotency_key};
use super::{Created, WorldStore};
use crate::domain::{NewEvent, Page, WorldEvent};
use crate::error::{WorldError, WorldResult};

impl WorldStore {
    /// Inserts an event and its regions in one transaction. With an
    /// idempotency key, the key is stored in the same transaction, and a
    /// repeat returns the event the first request created.
    pub async fn publish_event(
        &self,
        new: &NewEvent,
        idempotency_key: Option<&str>,
        game_time_ms: i64,
        now_ms: i64,
    ) -> WorldResult<Created<WorldEvent>> {
        let fingerprint = new.fingerprint();
        let key = idempotency_key.map(|key| (key, fingerprint.as_str()));
        create_or_replay(
            idempotency_key,
            |key| self.replay(key, &fingerprint),
            || self.insert_event(new, key, game_time_ms, now_ms),
        )
        .await
    }

    /// The publish transaction: the event, its regions and the key row.
    async fn insert_event(
        &self,
        new: &NewEvent,
        key: Option<(&str, &str)>,
        game_time_ms: i64,
        now_ms: i64,
    ) -> WorldResult<Inserted<WorldEvent, WorldError>> {
        let txn = self.db.begin().await?;
        let row = event::Entity::insert(event::ActiveModel {
            kind: Set(new.kind.clone()),
            text: Set(new.text.clone()),
            game_time_ms: Set(game_time_ms),
            created_at_ms: Set(now_ms),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        event_region::Entity::insert_many(new.region_ids.iter().map(|region_id| event_region::ActiveModel {
            region_id: Set(*region_id),
            event_id: Set(row.id),
        }))
        .exec_without_returning(&txn)
        .await?;
        if let Some((key, fingerprint)) = key {
            let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                event_id: Set(row.id),
                created_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                // A concurrent request with the same key may have won the
                // race: drop this event (that request's result is the answer).
                return key_refused(txn, err).await;
            }
        }
        txn.commit().await?;
        Ok(Inserted::Done(to_event(row, new.region_ids.clone())))
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> WorldResult<Option<WorldEvent>> {
        let Some(row) = idempotency_key::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        check_fingerprint(key, &row.fingerprint, fingerprint)?;
        let Some(event) = event::Entity::find_by_id(row.event_id).one(&self.db).await? else {
            return Err(WorldError::Corrupt(format!(
                "idempotency key {key:?} names missing event {}",
                row.event_id
            )));
        };
        Ok(self.with_regions(vec![event]).await?.pop())
    }

    /// Reads one page of events in id order, by region and since a real time.
    pub async fn list_events(
        &self,
        region_id: Option<i64>,
        since_ms: Option<i64>,
        page: Page,
    ) -> WorldResult<(Vec<WorldEvent>, Option<String>)> {
        let mut query = event::Entity::find().filter(event::Column::Id.gt(page.after_id()));
        if let Some(since_ms) = since_ms {
            query = query.filter(event::Column::CreatedAtMs.gte(since_ms));
        }
        if let Some(region_id) = region_id {
            query = query.filter(
                event::Column::Id.in_subquery(
                    Query::select()
                        .column(event_region::Column::EventId)
                        .from(event_region::Entity)
                        .and_where(event_region::Column::RegionId.eq(region_id))
                        .and_where(event_region::Column::EventId.gt(page.after_id()))
                        .to_owned(),
                ),
            );
        }
        let rows = query
            .order_by_asc(event::Column::Id)
            .limit(u64::from(page.limit) + 1)
            .all(&self.db)
            .await?;
        let (rows, next) = page.finish(rows, |r| r.id);
        Ok((self.with_regions(rows).await?, next))
    }

    /// Reads one event with its regions.
    pub async fn get_event(&self, id: i64) -> WorldResult<Option<WorldEvent>> {
        let Some(row) = event::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(self.with_regions(vec![row]).await?.pop())
    }

    async fn with_regions(&self, rows: Vec<event::Model>) -> WorldResult<Vec<WorldEvent>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let links = event_region::Entity::find()
            .filter(event_region::Column::EventId.is_in(rows.iter().map(|r| r.id)))
            .order_by_asc(event_region::Column::EventId)
            .order_by_asc(event_region::Column::RegionId)
            .all(&self.db)
            .await?;
        let mut by_event: HashMap<i64, Vec<i64>> = HashMap::with_capacity(rows.len());
        for link in links {
            by_event.entry(link.event_id).or_default().push(link.region_id);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let regions = by_event.remove(&row.id).unwrap_or_default();
                to_event(row, regions)
            })
            .collect())
    }
}

fn to_event(row: event::Model, region_ids: Vec<i64>) -> WorldEvent {
    WorldEvent {
        id: row.id,
        kind: row.kind,
        text: row.text,
        region_ids,
        game_time_ms: row.game_time_ms,
        created_at_ms: row.created_at_ms,
    }
}
