//! Idempotent creates, written once: a retry with the same idempotency key
//! and the same request gets the first answer; the same key with another
//! request is a conflict; two racing requests with one key make one thing.
//!
//! Each service keeps its own key table (a key, the request's fingerprint,
//! the id of what it created) and writes the key row in the transaction
//! that creates the thing, so a key never names something that was rolled
//! back. [`create_or_replay`] is the protocol around that transaction.

use sea_orm::{DatabaseTransaction, DbErr, SqlErr};

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    /// It made a new `T`.
    New(T),
    /// An earlier request with the same idempotency key made this `T`.
    Replayed(T),
}

impl<T> Created<T> {
    /// What was created (now or earlier).
    pub fn into_inner(self) -> T {
        match self {
            Created::New(value) | Created::Replayed(value) => value,
        }
    }

    /// Whether this request made it.
    pub fn is_new(&self) -> bool {
        matches!(self, Created::New(_))
    }

    /// The same outcome around `f(value)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Created::New(value) => Created::New(f(value)),
            Created::Replayed(value) => Created::Replayed(f(value)),
        }
    }
}

/// What the create transaction did.
#[derive(Debug)]
pub enum Inserted<T, E> {
    /// Committed: the new `T` (and its key row, when there was a key).
    Done(T),
    /// Rolled back: a concurrent request stored the same key first. The
    /// error is what to report if that request's result cannot be read.
    KeyTaken(E),
}

/// An idempotency key reused with a different request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency key {0:?} was already used for a different request")]
pub struct KeyConflict(pub String);

/// Checks that the request stored under `key` (`stored` fingerprint) is the
/// one being retried (`fingerprint`).
pub fn check_fingerprint(key: &str, stored: &str, fingerprint: &str) -> Result<(), KeyConflict> {
    if stored == fingerprint {
        Ok(())
    } else {
        Err(KeyConflict(key.to_owned()))
    }
}

/// Whether a failed insert broke a unique constraint (with a key: the key
/// row of a concurrent request).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// What the create transaction answers when writing its key row failed:
/// it rolls back, and a unique violation (a concurrent request stored the
/// key first) is [`Inserted::KeyTaken`], anything else an error.
pub async fn key_refused<T, E: From<DbErr>>(txn: DatabaseTransaction, err: DbErr) -> Result<Inserted<T, E>, E> {
    txn.rollback().await?;
    let taken = is_unique_violation(&err);
    let err = E::from(err);
    if taken { Ok(Inserted::KeyTaken(err)) } else { Err(err) }
}

/// Creates something under an optional idempotency key.
///
/// With a key, `replay` first looks for an earlier request's result
/// (erroring with the service's conflict when the fingerprints differ).
/// Then `insert` runs the create transaction; when it reports that a
/// concurrent request stored the key first, that request's result is read
/// with `replay` and returned.
pub async fn create_or_replay<'k, T, E, R, RF, I, IF>(
    key: Option<&'k str>,
    replay: R,
    insert: I,
) -> Result<Created<T>, E>
where
    R: Fn(&'k str) -> RF,
    RF: Future<Output = Result<Option<T>, E>>,
    I: FnOnce() -> IF,
    IF: Future<Output = Result<Inserted<T, E>, E>>,
{
    if let Some(key) = key
        && let Some(earlier) = replay(key).await?
    {
        return Ok(Created::Replayed(earlier));
    }
    match insert().await? {
        Inserted::Done(value) => Ok(Created::New(value)),
        Inserted::KeyTaken(err) => match key {
            Some(key) => replay(key).await?.map(Created::Replayed).ok_or(err),
            None => Err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use super::*;

    /// A key table in memory: key → (fingerprint, value).
    type Table = Mutex<Vec<(String, String, u32)>>;

    fn replayer<'a>(
        table: &'a Table,
        fingerprint: &'a str,
    ) -> impl Fn(&str) -> std::future::Ready<Result<Option<u32>, KeyConflict>> + 'a {
        move |key: &str| {
            let found = table.lock().unwrap().iter().find(|(k, _, _)| k == key).cloned();
            std::future::ready(match found {
                None => Ok(None),
                Some((_, stored, value)) => check_fingerprint(key, &stored, fingerprint).map(|()| Some(value)),
            })
        }
    }

    #[tokio::test]
    async fn a_retry_replays_and_another_request_conflicts() {
        let table: Table = Mutex::new(Vec::new());
        let insert = |value: u32, fingerprint: &'static str| {
            let table = &table;
            move || {
                table.lock().unwrap().push(("k".into(), fingerprint.into(), value));
                std::future::ready(Ok(Inserted::Done(value)))
            }
        };
        let first = create_or_replay(Some("k"), replayer(&table, "f1"), insert(1, "f1")).await;
        assert_eq!(first, Ok(Created::New(1)));
        let retry = create_or_replay(Some("k"), replayer(&table, "f1"), insert(2, "f1")).await;
        assert_eq!(retry, Ok(Created::Replayed(1)));
        let other = create_or_replay(Some("k"), replayer(&table, "f2"), insert(3, "f2")).await;
        assert_eq!(other, Err(KeyConflict("k".into())));
        assert_eq!(table.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lost_race_answers_with_the_winner() {
        let table: Table = Mutex::new(vec![]);
        // The winner's key row lands between this request's replay and its
        // insert: the insert sees the key taken.
        let race = || {
            table.lock().unwrap().push(("k".into(), "f".into(), 7));
            std::future::ready(Ok(Inserted::KeyTaken(KeyConflict("lost".into()))))
        };
        let lost = create_or_replay(Some("k"), replayer(&table, "f"), race).await;
        assert_eq!(lost, Ok(Created::Replayed(7)));
        assert_eq!(Created::New(2).map(|v| v * 2).into_inner(), 4);
    }
}
