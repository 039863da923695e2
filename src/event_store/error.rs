//! What can go wrong in the event store, kept apart from domain rejections.

use uuid::Uuid;

use super::{ExpectedVersion, ProjectionError, StreamId};

/// An event-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the expected version: someone else wrote first.
    #[error("stream {stream} is at version {actual}, but the append expected {expected}")]
    VersionConflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The version the stream is at.
        actual: u64,
    },
    /// An event with this id is already in the log.
    #[error("an event with id {0} is already recorded")]
    DuplicateEventId(Uuid),
    /// A command id was used before for a different request.
    #[error("command {0} was already used for a different request")]
    CommandReused(Uuid),
    /// The database cannot be reached or is not ready; retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A projection could not apply an event.
    #[error("projection {projection} failed on event at position {position}")]
    Projection {
        /// The projection's name.
        projection: &'static str,
        /// The event it failed on.
        position: u64,
        /// Why.
        #[source]
        source: ProjectionError,
    },
    /// A stored row could not be read back (corrupt or from an unknown schema).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// True when the operation may succeed if retried after a while.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// `projection` failed on the event at `position`. When the statement failed because the
    /// database went away, that is what the caller hears: the event is as unwritten as the
    /// projection, and a retry may succeed.
    pub fn projection(projection: &'static str, position: u64, source: ProjectionError) -> Self {
        let away = match &source {
            ProjectionError::Postgres(e) => postgres_is_away(e),
            ProjectionError::Sqlite(e) => sqlite_is_busy(e),
            ProjectionError::Payload { .. } | ProjectionError::Conflict(_) => false,
        };
        if away {
            Self::Unavailable(error_chain(&source))
        } else {
            Self::Projection {
                projection,
                position,
                source,
            }
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if postgres_is_away(&e) {
            Self::Unavailable(error_chain(&e))
        } else {
            Self::Database(Box::new(e))
        }
    }
}

/// A closed connection, an I/O failure, or the server saying it is going away or not up yet is
/// the database being away; anything else (an SQL error, a type mismatch) is a fault to report,
/// not to retry.
fn postgres_is_away(e: &tokio_postgres::Error) -> bool {
    let io = std::iter::successors(std::error::Error::source(e), |s| s.source())
        .any(|s| s.is::<std::io::Error>());
    let away = e.code().is_some_and(|code| is_away(code.code()));
    e.is_closed() || io || away || e.to_string().starts_with("error connecting")
}

/// SQLSTATEs a server sends when it cannot serve now but will: class 08 (connection exception),
/// 57P01 to 57P03 (shut down by an administrator or a crash, or still starting up) and 53300
/// (too many connections).
fn is_away(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(error_chain(&other)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if sqlite_is_busy(&e) {
            Self::Unavailable(error_chain(&e))
        } else {
            Self::Database(Box::new(e))
        }
    }
}

fn sqlite_is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl From<deadpool_sqlite::PoolError> for StoreError {
    fn from(e: deadpool_sqlite::PoolError) -> Self {
        Self::Unavailable(error_chain(&e))
    }
}

impl From<deadpool_sqlite::InteractError> for StoreError {
    fn from(e: deadpool_sqlite::InteractError) -> Self {
        Self::Database(e.to_string().into())
    }
}

/// An error and its causes on one line, for logs and readiness answers.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_going_away_or_starting_is_transient_and_sql_faults_are_not() {
        for away in ["08006", "08001", "57P01", "57P02", "57P03", "53300"] {
            assert!(is_away(away), "{away}");
        }
        for fault in ["23505", "42P01", "40001", "22P02"] {
            assert!(!is_away(fault), "{fault}");
        }
    }
}
