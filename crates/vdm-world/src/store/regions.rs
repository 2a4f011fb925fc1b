//! Regions and their hex cells: a cell belongs to one region by primary
//! key; neighbours come from one bounding-box scan.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::{region, region_cell};
use super::{WorldStore, contended_or};
use crate::domain::{BoundingBox, Hex, NewRegion, Region, neighbor_ids};
use crate::error::{WorldError, WorldResult};

/// Rows per multi-row insert, well under every backend's bind limit.
const INSERT_CHUNK: usize = 1_000;

impl WorldStore {
    /// Reads every region with its cells and neighbours (two queries).
    pub async fn list_regions(&self) -> WorldResult<Vec<Region>> {
        let rows = region::Entity::find()
            .order_by_asc(region::Column::Id)
            .all(&self.db)
            .await?;
        let cells = region_cell::Entity::find()
            .order_by_asc(region_cell::Column::Q)
            .order_by_asc(region_cell::Column::R)
            .all(&self.db)
            .await?;
        let owners: HashMap<Hex, i64> = cells.iter().map(|c| (Hex::new(c.q, c.r), c.region_id)).collect();
        let mut by_region: HashMap<i64, Vec<Hex>> = HashMap::with_capacity(rows.len());
        for cell in &cells {
            by_region
                .entry(cell.region_id)
                .or_default()
                .push(Hex::new(cell.q, cell.r));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let cells = by_region.remove(&row.id).unwrap_or_default();
                let neighbors = neighbor_ids(row.id, &cells, &owners);
                to_region(row, cells, neighbors)
            })
            .collect())
    }

    /// Reads one region with its cells and neighbours (three queries).
    pub async fn get_region(&self, id: i64) -> WorldResult<Option<Region>> {
        let Some(row) = region::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let cells: Vec<Hex> = region_cell::Entity::find()
            .filter(region_cell::Column::RegionId.eq(id))
            .order_by_asc(region_cell::Column::Q)
            .order_by_asc(region_cell::Column::R)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| Hex::new(c.q, c.r))
            .collect();
        let owners = match BoundingBox::around(&cells, 1) {
            Some(area) => self
                .cells_in(&self.db, area, id)
                .await?
                .into_iter()
                .map(|c| (Hex::new(c.q, c.r), c.region_id))
                .collect(),
            None => HashMap::new(),
        };
        let neighbors = neighbor_ids(id, &cells, &owners);
        Ok(Some(to_region(row, cells, neighbors)))
    }

    /// The id of the region holding `hex`, if any.
    pub async fn region_id_at(&self, hex: Hex) -> WorldResult<Option<i64>> {
        Ok(region_cell::Entity::find_by_id((hex.q, hex.r))
            .one(&self.db)
            .await?
            .map(|c| c.region_id))
    }

    /// The first of `ids` that names no region.
    pub async fn first_unknown_region(&self, ids: &[i64]) -> WorldResult<Option<i64>> {
        let found: HashSet<i64> = region::Entity::find()
            .select_only()
            .column(region::Column::Id)
            .filter(region::Column::Id.is_in(ids.iter().copied()))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        Ok(ids.iter().copied().find(|id| !found.contains(id)))
    }

    /// Creates or replaces a region and its cells in one transaction.
    /// Returns whether it was created. Fails with [`WorldError::CellTaken`]
    /// when another region owns one of the cells.
    pub async fn upsert_region(&self, new: &NewRegion, now_ms: i64) -> WorldResult<bool> {
        let txn = self.db.begin().await?;
        // A write first: it takes the region's row lock (Postgres) or the
        // database write lock (SQLite) before any read, so SQLite never has
        // to upgrade a read transaction.
        let updated = region::Entity::update_many()
            .col_expr(region::Column::Name, Expr::value(new.name.clone()))
            .col_expr(region::Column::Biome, Expr::value(new.biome.clone()))
            .col_expr(region::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(region::Column::Id.eq(new.id))
            .exec(&txn)
            .await?;
        let created = updated.rows_affected == 0;
        if created {
            let inserted = region::Entity::insert(region::ActiveModel {
                id: Set(new.id),
                name: Set(new.name.clone()),
                biome: Set(new.biome.clone()),
                created_at_ms: Set(now_ms),
                updated_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "region"));
            }
        }
        let wanted: HashSet<Hex> = new.cells.iter().copied().collect();
        if let Some(area) = BoundingBox::around(&new.cells, 0) {
            let taken = self
                .cells_in(&txn, area, new.id)
                .await?
                .into_iter()
                .find(|c| wanted.contains(&Hex::new(c.q, c.r)));
            if let Some(cell) = taken {
                txn.rollback().await?;
                return Err(WorldError::CellTaken {
                    hex: Hex::new(cell.q, cell.r),
                    owner: cell.region_id,
                });
            }
        }
        region_cell::Entity::delete_many()
            .filter(region_cell::Column::RegionId.eq(new.id))
            .exec(&txn)
            .await?;
        for chunk in new.cells.chunks(INSERT_CHUNK) {
            let inserted = region_cell::Entity::insert_many(chunk.iter().map(|c| region_cell::ActiveModel {
                q: Set(c.q),
                r: Set(c.r),
                region_id: Set(new.id),
            }))
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "cells"));
            }
        }
        txn.commit().await?;
        Ok(created)
    }

    /// Cells of regions other than `except` inside `area`.
    async fn cells_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        area: BoundingBox,
        except: i64,
    ) -> WorldResult<Vec<region_cell::Model>> {
        Ok(region_cell::Entity::find()
            .filter(region_cell::Column::Q.between(area.min_q, area.max_q))
            .filter(region_cell::Column::R.between(area.min_r, area.max_r))
            .filter(region_cell::Column::RegionId.ne(except))
            .all(conn)
            .await?)
    }
}

fn to_region(row: region::Model, cells: Vec<Hex>, neighbor_ids: Vec<i64>) -> Region {
    Region {
        id: row.id,
        name: row.name,
        biome: row.biome,
        cells,
        neighbor_ids,
        updated_at_ms: row.updated_at_ms,
    }
}
