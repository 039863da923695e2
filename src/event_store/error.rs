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
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A closed connection or an I/O failure is the database being away; anything else
        // (an SQL error, a type mismatch) is a fault to report, not to retry.
        let io = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .any(|s| s.is::<std::io::Error>());
        if e.is_closed() || io || e.to_string().starts_with("error connecting") {
            Self::Unavailable(error_chain(&e))
        } else {
            Self::Database(Box::new(e))
        }
    }
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
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Unavailable(error_chain(&e))
            }
            _ => Self::Database(Box::new(e)),
        }
    }
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
