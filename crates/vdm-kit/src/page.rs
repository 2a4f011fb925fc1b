//! Opaque keyset-pagination cursors, shared by every service that lists in
//! id order: a page continues after the last id of
//! the previous one, so pages stay stable while rows are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A limit or cursor a client sent that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PageError(pub String);

/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 100;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 20;

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Rows with an id above this one come next.
    pub after_id: i64,
}

impl Cursor {
    /// Decodes a client's cursor; an empty string is the first page.
    pub fn decode(raw: &str) -> Result<Cursor, PageError> {
        if raw.is_empty() {
            return Ok(Cursor::default());
        }
        let bad = || PageError(format!("cursor {raw:?} is not a cursor this service issued"));
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        let after_id = text
            .strip_prefix("a:")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(bad)?;
        Ok(Cursor { after_id })
    }

    /// Encodes the cursor that continues after `last_id`.
    pub fn encode_after(last_id: i64) -> String {
        URL_SAFE_NO_PAD.encode(format!("a:{last_id}"))
    }
}

/// A page request: where to start and how many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Where the page starts.
    pub cursor: Cursor,
    /// Rows wanted (1..=[`MAX_PAGE`]).
    pub limit: u32,
}

impl Page {
    /// Validates a client's limit (0 means the default) and cursor.
    pub fn parse(limit: u32, cursor: &str) -> Result<Page, PageError> {
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => return Err(PageError(format!("limit must be between 1 and {MAX_PAGE}"))),
            n => n,
        };
        Ok(Page {
            cursor: Cursor::decode(cursor)?,
            limit,
        })
    }

    /// Splits `rows` (fetched with `limit + 1`) into the page and the next
    /// cursor, if more rows follow.
    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows.last().map(|r| Cursor::encode_after(id_of(r)));
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
    fn round_trips_and_rejects_garbage() {
        let raw = Cursor::encode_after(42);
        assert_eq!(Cursor::decode(&raw).unwrap().after_id, 42);
        assert!(Cursor::decode("!!!").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("b:1")).is_err());
        assert_eq!(Cursor::decode("").unwrap().after_id, 0);
    }

    #[test]
    fn a_full_page_has_a_next_cursor() {
        let page = Page::parse(2, "").unwrap();
        let (rows, next) = page.finish(vec![1, 2, 3], |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(Cursor::decode(&next.unwrap()).unwrap().after_id, 2);
        assert!(Page::parse(101, "").is_err());
    }
}
