//! Opaque keyset-pagination cursors: a page continues after the last id of
//! the previous one (ascending lists) or before it (newest-first lists), so
//! pages stay stable while rows are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{NpcError, NpcResult};

/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 100;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 20;

/// The id order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first (NPCs).
    Ascending,
    /// Newest first (memories).
    Descending,
}

impl Order {
    fn tag(self) -> &'static str {
        match self {
            Order::Ascending => "a:",
            Order::Descending => "d:",
        }
    }
}

/// A page request: where to start and how many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows after (ascending) or before (descending) this id; `None` from the start.
    pub from_id: Option<i64>,
    /// Rows wanted (1..=[`MAX_PAGE`]).
    pub limit: u32,
    /// The list's order.
    pub order: Order,
}

impl Page {
    /// Validates a client's limit (0 means the default) and cursor (empty:
    /// the first page; a cursor of a list in the other order is refused).
    pub fn parse(limit: u32, cursor: &str, order: Order) -> NpcResult<Page> {
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(NpcError::Invalid(format!("limit must be between 1 and {MAX_PAGE}")));
            }
            n => n,
        };
        let from_id = if cursor.is_empty() {
            None
        } else {
            let bad = || NpcError::Invalid(format!("cursor {cursor:?} is not a cursor this list issued"));
            let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
            let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
            let id = text
                .strip_prefix(order.tag())
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(bad)?;
            Some(id)
        };
        Ok(Page { from_id, limit, order })
    }

    /// Splits `rows` (fetched with `limit + 1`) into the page and the next
    /// cursor, if more rows follow.
    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows
                .last()
                .map(|r| URL_SAFE_NO_PAD.encode(format!("{}{}", self.order.tag(), id_of(r))));
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_orders_apart() {
        let page = Page::parse(2, "", Order::Descending).unwrap();
        let (rows, next) = page.finish(vec![9, 8, 7], |r| *r);
        assert_eq!(rows, vec![9, 8]);
        let next = next.unwrap();
        assert_eq!(Page::parse(2, &next, Order::Descending).unwrap().from_id, Some(8));
        assert!(Page::parse(2, &next, Order::Ascending).is_err());
        assert!(Page::parse(2, "!!!", Order::Ascending).is_err());
        assert!(Page::parse(101, "", Order::Ascending).is_err());
        assert_eq!(Page::parse(0, "", Order::Ascending).unwrap().limit, DEFAULT_PAGE);
    }
}
