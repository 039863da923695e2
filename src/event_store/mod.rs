//! The event log: an append-only store of facts, grouped into streams.
//!
//! One trait, [`EventStore`], with two backends that behave identically: PostgreSQL
//! ([`postgres`], for production and many instances on one database) and an embedded SQLite
//! file ([`sqlite`], the zero set-up default). Read models ([`Projection`]s) are applied inline in
//! the append transaction, so every read after a successful append sees it.
//!
//! This module may depend on the database drivers and on nothing else in Berth but
//! [`crate::config`]; the domain never sees it.

mod backend;
mod error;
mod model;
pub mod postgres;
mod projection;
mod secrets;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use backend::Backend;
pub use error::{StoreError, error_chain};
pub use model::{
    AppendOutcome, AppendRequest, EventFilter, ExpectedVersion, Metadata, NewEvent, Position,
    RecordedEvent, StreamId,
};
pub use projection::{Projection, ProjectionError};

/// How many events one page of [`EventStore::read_all`] may return at most.
pub const MAX_PAGE: usize = 10_000;

/// Progress of a long operation: `(done, total)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// The append-only log of events and the read models derived from it.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends events to one stream if its version is the expected one, applies every projection
    /// in the same transaction, and wakes subscribers once it is committed. A request whose
    /// command id was seen before appends nothing and returns the first outcome.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// The outcome of the command with this id, if it was recorded, with its request fingerprint.
    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<(AppendOutcome, Option<String>)>, StoreError>;

    /// Reads one stream in version order, optionally only the events recorded at or before `until`.
    async fn read_stream(
        &self,
        stream: &StreamId,
        until: Option<OffsetDateTime>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads at most `limit` events after `after` in global order, keeping those that match.
    /// A reader that pages with the last position it saw never misses an event.
    async fn read_all(
        &self,
        after: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the newest committed event (0 for an empty log).
    async fn head(&self) -> Result<Position, StoreError>;

    /// Checks that the database answers and its schema is in place.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Empties every projection and replays the whole log into it, in one transaction, so that
    /// readers see either the old or the new read models. Returns how many events were replayed.
    async fn rebuild_projections(&self, progress: Progress<'_>) -> Result<u64, StoreError>;

    /// Wakes up with the newest position each time events are committed, by this process or,
    /// on PostgreSQL, by any other process on the same database.
    fn subscribe(&self) -> broadcast::Receiver<Position>;

    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;
}

/// A shared handle to whichever store the service runs on.
pub type SharedEventStore = Arc<dyn EventStore>;

/// The projections every store keeps, in the order they are applied.
pub type Projections = Arc<[Arc<dyn Projection>]>;

/// Refuses a replay whose request differs from the first one.
fn check_fingerprint(
    command_id: uuid::Uuid,
    stored: Option<&str>,
    given: Option<&str>,
) -> Result<(), StoreError> {
    match (stored, given) {
        (Some(stored), Some(given)) if stored != given => {
            Err(StoreError::CommandReused(command_id))
        }
        _ => Ok(()),
    }
}

fn check_expected(
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: u64,
) -> Result<(), StoreError> {
    let ok = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual == 0,
        ExpectedVersion::Exact(version) => actual == version,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::VersionConflict {
            stream: stream.clone(),
            expected,
            actual,
        })
    }
}
