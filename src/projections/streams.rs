//! `stream_summaries`: one row per stream with its version, size and last change.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event_store::sqlite::{from_micros, micros};
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
    match backend {
        Backend::Postgres(store) => {
            let client = store.pool().get().await?;
            let rows = client.query(SELECT, &[]).await?;
            Ok(rows
                .iter()
                .map(|row| StreamSummary {
                    stream: StreamId::new(row.get::<_, String>(0), row.get::<_, String>(1)),
                    version: row.get::<_, i64>(2) as u64,
                    event_count: row.get::<_, i64>(3) as u64,
                    first_position: row.get::<_, i64>(4) as u64,
                    last_position: row.get::<_, i64>(5) as u64,
                    last_event_type: row.get(6),
                    created_at: row.get(7),
                    updated_at: row.get(8),
                })
                .collect())
        }
        Backend::Sqlite(store) => {
            let conn = store.pool().get().await?;
            conn.interact(|conn| {
                let mut statement = conn.prepare_cached(SELECT)?;
                let rows = statement.query_map([], |row| {
                    let summary = StreamSummary {
                        stream: StreamId::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                        version: row.get::<_, i64>(2)? as u64,
                        event_count: row.get::<_, i64>(3)? as u64,
                        first_position: row.get::<_, i64>(4)? as u64,
                        last_position: row.get::<_, i64>(5)? as u64,
                        last_event_type: row.get(6)?,
                        created_at: OffsetDateTime::UNIX_EPOCH,
                        updated_at: OffsetDateTime::UNIX_EPOCH,
                    };
                    Ok((summary, row.get::<_, i64>(7)?, row.get::<_, i64>(8)?))
                })?;
                rows.map(|row| {
                    let (summary, created, updated) = row?;
                    Ok(StreamSummary {
                        created_at: from_micros(created)?,
                        updated_at: from_micros(updated)?,
                        ..summary
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?
        }
    }
}
