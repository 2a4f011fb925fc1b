//! Keyset-pagination cursors, shared by every service that lists in id
//! order: a page continues after the last id of the previous one, so pages
//! stay stable while rows are added. A cursor is the list's order tag and
//! that id (`a42`, `d42`): every string its pattern admits is a position a
//! list can start from, so the API document can say exactly which cursors
//! are valid.

/// A limit or cursor a client sent that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PageError(pub String);

/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 100;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 20;

/// The id order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first: a page continues after the last id.
    #[default]
    Ascending,
    /// Newest first: a page continues before the last id.
    Descending,
}

impl Order {
    /// The cursor's tag: a cursor of a list in one order is refused by a
    /// list in the other.
    fn tag(self) -> char {
        match self {
            Order::Ascending => 'a',
            Order::Descending => 'd',
        }
    }

    /// The pattern of this order's cursors, as the API document states it
    /// (ids of up to 18 digits, all of which fit an `i64`).
    pub const fn cursor_pattern(self) -> &'static str {
        match self {
            Order::Ascending => "^a(0|[1-9][0-9]{0,17})$",
            Order::Descending => "^d(0|[1-9][0-9]{0,17})$",
        }
    }
}

/// A page request: where to start, how many rows, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows after (ascending) or before (descending) this id; `None` from
    /// the start.
    pub from_id: Option<i64>,
    /// Rows wanted (1..=[`MAX_PAGE`]).
    pub limit: u32,
    /// The list's order.
    pub order: Order,
}

impl Page {
    /// Validates a client's limit (0 means the default) and cursor (empty:
    /// the first page) for a list in id order.
    pub fn parse(limit: u32, cursor: &str) -> Result<Page, PageError> {
        Page::parse_ordered(limit, cursor, Order::Ascending)
    }

    /// [`Page::parse`] for a list in `order`; a cursor another order issued
    /// is refused.
    pub fn parse_ordered(limit: u32, cursor: &str, order: Order) -> Result<Page, PageError> {
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => return Err(PageError(format!("limit must be between 1 and {MAX_PAGE}"))),
            n => n,
        };
        let from_id = if cursor.is_empty() {
            None
        } else {
            let id = cursor
                .strip_prefix(order.tag())
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<i64>().ok())
                .ok_or_else(|| PageError(format!("cursor {cursor:?} is not a cursor this list issued")))?;
            Some(id)
        };
        Ok(Page { from_id, limit, order })
    }

    /// The id an ascending page starts after (0 on the first page).
    pub fn after_id(&self) -> i64 {
        self.from_id.unwrap_or(0)
    }

    /// Splits `rows` (fetched with `limit + 1`) into the page and the next
    /// cursor, if more rows follow.
    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows.last().map(|r| self.cursor_after(id_of(r)));
            (rows, next)
        } else {
            (rows, None)
        }
    }

    /// The cursor of the page that continues after `last_id`.
    pub fn cursor_after(&self, last_id: i64) -> String {
        format!("{}{last_id}", self.order.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let page = Page::parse(2, "").unwrap();
        assert_eq!(page.after_id(), 0);
        let raw = page.cursor_after(42);
        assert_eq!(Page::parse(2, &raw).unwrap().after_id(), 42);
        assert_eq!(raw, "a42");
        for bad in ["!!!", "b1", "a", "a-1", "a+1", "a1x", "d1", "a99999999999999999999"] {
            assert!(Page::parse(2, bad).is_err(), "{bad}");
        }
        // Every cursor the documented pattern admits starts a page.
        assert_eq!(
            Page::parse(2, "a999999999999999999").unwrap().after_id(),
            999_999_999_999_999_999
        );
        assert_eq!(Page::parse(2, "a0").unwrap().after_id(), 0);
        assert!(Page::parse(101, "").is_err());
        assert_eq!(Page::parse(0, "").unwrap().limit, DEFAULT_PAGE);
    }

    #[test]
    fn a_full_page_has_a_next_cursor_in_its_order() {
        let page = Page::parse(2, "").unwrap();
        let (rows, next) = page.finish(vec![1, 2, 3], |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(Page::parse(2, &next.unwrap()).unwrap().from_id, Some(2));

        let newest_first = Page::parse_ordered(2, "", Order::Descending).unwrap();
        let (rows, next) = newest_first.finish(vec![9, 8, 7], |r| *r);
        assert_eq!(rows, vec![9, 8]);
        let next = next.unwrap();
        assert_eq!(
            Page::parse_ordered(2, &next, Order::Descending).unwrap().from_id,
            Some(8)
        );
        assert!(
            Page::parse(2, &next).is_err(),
            "a descending cursor in an ascending list"
        );
    }
}
