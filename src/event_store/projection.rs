//! The contract between the event store and the read models it keeps in step.

use async_trait::async_trait;

use super::RecordedEvent;

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event's payload does not have the shape its type and version promise.
    #[error("event {event_type} v{schema_version} has an unexpected payload: {reason}")]
    Payload {
        /// The stored type name.
        event_type: String,
        /// Its schema version.
        schema_version: u32,
        /// What is wrong.
        reason: String,
    },
    /// The event would break an invariant that spans streams (e.g. a name held by another kind).
    #[error("{0}")]
    Conflict(String),
    /// PostgreSQL refused the projection's statement.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// SQLite refused the projection's statement.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// A read model derived from events, written in the same transaction as the events it reflects.
///
/// Each projection carries the SQL for both backends; the event store decides which half runs.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A short stable name, for logs and errors.
    fn name(&self) -> &'static str;

    /// The tables this projection owns; a rebuild empties them before replaying the log.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event inside a PostgreSQL transaction.
    async fn apply_postgres(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies one event inside a SQLite transaction.
    fn apply_sqlite(
        &self,
        tx: &rusqlite::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError>;
}
