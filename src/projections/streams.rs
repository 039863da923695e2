//! `stream_summaries`: one row per stream with its version, size and last change.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::sql;
use crate::event_store::sqlite::micros;
use crate::event_store::{
    Backend, Projection, ProjectionError, RecordedEvent, StoreError, StreamId,
};

/// The projection that keeps `stream_summaries`.
pub struct StreamSummaries;

/// One stream as the read model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream.
    pub stream: StreamId,
    /// Its current version.
    pub version: u64,
    /// How many events it holds.
    pub event_count: u64,
    /// Position of its first event.
    pub first_position: u64,
    /// Position of its newest event.
    pub last_position: u64,
    /// Type of its newest event.
    pub last_event_type: String,
    /// When its first event was recorded.
    pub created_at: OffsetDateTime,
    /// When its newest event was recorded.
    pub updated_at: OffsetDateTime,
}

#[async_trait]
impl Projection for StreamSummaries {
    fn name(&self) -> &'static str {
        "stream_summaries"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["stream_summaries"]
    }

    async fn apply_postgres(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        tx.execute(
            "INSERT INTO stream_summaries (category, stream_name, version, event_count, \
             first_position, last_position, last_event_type, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $4, $5, $6, $6) \
             ON CONFLICT (category, stream_name) DO UPDATE SET version = EXCLUDED.version, \
             event_count = stream_summaries.event_count + 1, \
             last_position = EXCLUDED.last_position, \
             last_event_type = EXCLUDED.last_event_type, updated_at = EXCLUDED.updated_at",
            &[
                &event.stream.category,
                &event.stream.name,
                &(event.stream_version as i64),
                &(event.position as i64),
                &event.event_type,
                &event.recorded_at,
            ],
        )
        .await?;
        Ok(())
    }

    fn apply_sqlite(
        &self,
        tx: &rusqlite::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        tx.prepare_cached(
            "INSERT INTO stream_summaries (category, stream_name, version, event_count, \
             first_position, last_position, last_event_type, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6, ?6) \
             ON CONFLICT (category, stream_name) DO UPDATE SET version = excluded.version, \
             event_count = stream_summaries.event_count + 1, \
             last_position = excluded.last_position, \
             last_event_type = excluded.last_event_type, updated_at = excluded.updated_at",
        )?
        .execute(rusqlite::params![
            event.stream.category,
            event.stream.name,
            event.stream_version as i64,
            event.position as i64,
            event.event_type,
            micros(event.recorded_at),
        ])?;
        Ok(())
    }
}

const SELECT: &str = "SELECT category, stream_name, version, event_count, first_position, \
    last_position, last_event_type, created_at, updated_at FROM stream_summaries \
    ORDER BY category, stream_name";

/// Every stream summary, ordered by category and name.
pub async fn list(backend: &Backend) -> Result<Vec<StreamSummary>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("stream_summaries: bad {what}"));
    sql::query(backend, SELECT, Vec::new())
        .await?
        .iter()
        .map(|row| {
            let text = |i: usize, what| {
                row[i]
                    .text()
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt(what))
            };
            let int = |i: usize, what| row[i].int().map(|v| v as u64).ok_or_else(|| corrupt(what));
            Ok(StreamSummary {
                stream: StreamId::new(text(0, "category")?, text(1, "stream_name")?),
                version: int(2, "version")?,
                event_count: int(3, "event_count")?,
                first_position: int(4, "first_position")?,
                last_position: int(5, "last_position")?,
                last_event_type: text(6, "last_event_type")?,
                created_at: row[7].time().ok_or_else(|| corrupt("created_at"))?,
                updated_at: row[8].time().ok_or_else(|| corrupt("updated_at"))?,
            })
        })
        .collect()
}
