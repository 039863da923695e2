//! Turning PostgreSQL rows into recorded events, and PostgreSQL errors into store errors.

use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::event_store::{
    AppendOutcome, ExpectedVersion, Metadata, RecordedEvent, StoreError, StreamId,
};

/// The columns [`event_from_row`] reads, in order.
pub const EVENT_COLUMNS: &str = "position, category, stream_name, stream_version, event_id, \
    event_type, schema_version, payload, actor, correlation_id, causation_id, command_id, recorded_at";

/// Converts a count or position to PostgreSQL's BIGINT; Berth never comes near its limit.
pub fn as_i64(value: u64) -> i64 {
    i64::try_from(value).expect("position or version exceeds i64::MAX")
}

/// Reads one event from a row selected with [`EVENT_COLUMNS`].
pub fn event_from_row(row: &Row) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get(0).map_err(corrupt)?;
    let version: i64 = row.try_get(3).map_err(corrupt)?;
    let schema_version: i32 = row.try_get(6).map_err(corrupt)?;
    let recorded_at: OffsetDateTime = row.try_get(12).map_err(corrupt)?;
    Ok(RecordedEvent {
        position: position as u64,
        stream: StreamId::new(
            row.try_get::<_, String>(1).map_err(corrupt)?,
            row.try_get::<_, String>(2).map_err(corrupt)?,
        ),
        stream_version: version as u64,
        event_id: row.try_get(4).map_err(corrupt)?,
        event_type: row.try_get(5).map_err(corrupt)?,
        schema_version: schema_version as u32,
        payload: row.try_get(7).map_err(corrupt)?,
        metadata: Metadata {
            actor: row.try_get(8).map_err(corrupt)?,
            correlation_id: row.try_get(9).map_err(corrupt)?,
            causation_id: row.try_get(10).map_err(corrupt)?,
            command_id: row.try_get(11).map_err(corrupt)?,
        },
        recorded_at,
    })
}

/// The first outcome of a command seen before, if it was.
pub async fn replay_command(
    tx: &impl tokio_postgres::GenericClient,
    command_id: Uuid,
) -> Result<Option<(AppendOutcome, Option<String>)>, StoreError> {
    let Some(command) = tx
        .query_opt(
            "SELECT category, stream_name, first_position, last_position, stream_version, \
             fingerprint FROM commands WHERE command_id = $1",
            &[&command_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let category: String = command.get(0);
    let name: String = command.get(1);
    let (first, last): (i64, i64) = (command.get(2), command.get(3));
    let version: i64 = command.get(4);
    let fingerprint: Option<String> = command.get(5);
    let rows = tx
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE category = $1 AND stream_name = $2 \
                 AND position BETWEEN $3 AND $4 ORDER BY position"
            ),
            &[&category, &name, &first, &last],
        )
        .await?;
    let outcome = AppendOutcome {
        events: rows.iter().map(event_from_row).collect::<Result<_, _>>()?,
        stream_version: version as u64,
        replayed: true,
    };
    Ok(Some((outcome, fingerprint)))
}

/// Names a failed insert: a known event id, a lost version race, or anything else.
pub fn insert_error(
    error: tokio_postgres::Error,
    event_id: Uuid,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: u64,
) -> StoreError {
    let constraint = error
        .as_db_error()
        .filter(|db| db.code() == &SqlState::UNIQUE_VIOLATION)
        .and_then(|db| db.constraint().map(str::to_owned));
    match constraint.as_deref() {
        Some("events_event_id_unique") => StoreError::DuplicateEventId(event_id),
        Some("events_stream_version_unique") => StoreError::VersionConflict {
            stream: stream.clone(),
            expected,
            actual,
        },
        _ => error.into(),
    }
}

fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}
