//! Turning SQLite rows into recorded events, inserting events, and building filtered reads.

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event_store::{
    AppendOutcome, AppendRequest, EventFilter, Metadata, Position, RecordedEvent, StoreError,
    StreamId,
};

/// The columns [`event_from_row`] reads, in order.
pub const EVENT_COLUMNS: &str = "position, category, stream_name, stream_version, event_id, \
    event_type, schema_version, payload, actor, correlation_id, causation_id, command_id, recorded_at";

/// The database clock, in microseconds since the Unix epoch.
const NOW_MICROS: &str = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)";

/// A time as stored: microseconds since the Unix epoch.
pub fn micros(time: OffsetDateTime) -> i64 {
    (time.unix_timestamp_nanos() / 1_000) as i64
}

/// A stored time back from microseconds since the Unix epoch.
pub fn from_micros(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {value}: {e}")))
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("uuid {text:?}: {e}")))
}

/// Reads one event from a row selected with [`EVENT_COLUMNS`].
pub fn event_from_row(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let payload: String = row.get(7)?;
    let command_id: Option<String> = row.get(11)?;
    Ok(RecordedEvent {
        position: row.get::<_, i64>(0)? as u64,
        stream: StreamId::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
        stream_version: row.get::<_, i64>(3)? as u64,
        event_id: uuid(&row.get::<_, String>(4)?)?,
        event_type: row.get(5)?,
        schema_version: row.get::<_, i64>(6)? as u32,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?,
        metadata: Metadata {
            actor: row.get(8)?,
            correlation_id: row.get(9)?,
            causation_id: row.get(10)?,
            command_id: command_id.as_deref().map(uuid).transpose()?,
        },
        recorded_at: from_micros(row.get(12)?)?,
    })
}

/// Inserts the request's events after version `actual`, and its command id if it has one.
pub fn insert_events(
    tx: &Transaction<'_>,
    request: &AppendRequest,
    actual: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let (stream, meta) = (&request.stream, &request.metadata);
    let mut recorded = Vec::with_capacity(request.events.len());
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO events (category, stream_name, stream_version, event_id, event_type, \
             schema_version, payload, actor, correlation_id, causation_id, command_id, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {NOW_MICROS}) \
             RETURNING {EVENT_COLUMNS}"
        ))?;
        for (offset, event) in request.events.iter().enumerate() {
            let version = (actual + 1 + offset as u64) as i64;
            let row = insert.query_row(
                rusqlite::params![
                    stream.category,
                    stream.name,
                    version,
                    event.event_id.to_string(),
                    event.event_type,
                    event.schema_version,
                    event.payload.to_string(),
                    meta.actor,
                    meta.correlation_id,
                    meta.causation_id,
                    meta.command_id.map(|id| id.to_string()),
                ],
                |row| Ok(event_from_row(row)),
            );
            match row {
                Ok(event) => recorded.push(event?),
                Err(e) if is_constraint(&e, "events.event_id") => {
                    return Err(StoreError::DuplicateEventId(event.event_id));
                }
                Err(e) if is_constraint(&e, "events.stream_version") => {
                    return Err(StoreError::VersionConflict {
                        stream: stream.clone(),
                        expected: request.expected,
                        actual,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let (Some(command_id), Some(first), Some(last)) =
        (meta.command_id, recorded.first(), recorded.last())
    {
        tx.execute(
            "INSERT INTO commands (command_id, category, stream_name, first_position, \
             last_position, stream_version, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                command_id.to_string(),
                stream.category,
                stream.name,
                first.position as i64,
                last.position as i64,
                last.stream_version as i64,
                request.fingerprint,
            ],
        )?;
    }
    Ok(recorded)
}

fn is_constraint(error: &rusqlite::Error, column: &str) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, Some(message))
        if e.code == rusqlite::ErrorCode::ConstraintViolation && message.contains(column))
}

/// The first outcome of a command seen before, if it was.
pub fn replay_command(
    tx: &rusqlite::Connection,
    command_id: Uuid,
) -> Result<Option<(AppendOutcome, Option<String>)>, StoreError> {
    let command = tx
        .query_row(
            "SELECT category, stream_name, first_position, last_position, stream_version, \
             fingerprint FROM commands WHERE command_id = ?1",
            [command_id.to_string()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((category, name, first, last, version, fingerprint)) = command else {
        return Ok(None);
    };
    let mut statement = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE category = ?1 AND stream_name = ?2 \
         AND position BETWEEN ?3 AND ?4 ORDER BY position"
    ))?;
    let events = statement
        .query_map((category, name, first, last), |row| Ok(event_from_row(row)))?
        .map(|row| row?)
        .collect::<Result<_, _>>()?;
    let outcome = AppendOutcome {
        events,
        stream_version: version as u64,
        replayed: true,
    };
    Ok(Some((outcome, fingerprint)))
}

/// A global read as SQL and its parameters.
pub struct FilterSql {
    /// The statement.
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<SqlValue>,
}

impl FilterSql {
    /// Builds the read of at most `limit` events after `after` that pass `filter`.
    pub fn new(after: Position, filter: &EventFilter, limit: usize) -> Self {
        let mut this = Self {
            sql: format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1"),
            params: vec![SqlValue::Integer(after as i64)],
        };
        if let Some(category) = &filter.category {
            this.push("category = ", SqlValue::Text(category.clone()));
        }
        if let Some(name) = &filter.stream_name {
            this.push("stream_name = ", SqlValue::Text(name.clone()));
        }
        if !filter.event_types.is_empty() {
            let first = this.params.len() + 1;
            let slots: Vec<String> = (first..first + filter.event_types.len())
                .map(|i| format!("?{i}"))
                .collect();
            this.sql
                .push_str(&format!(" AND event_type IN ({})", slots.join(", ")));
            this.params
                .extend(filter.event_types.iter().map(|t| SqlValue::Text(t.clone())));
        }
        if let Some(actor) = &filter.actor {
            this.push("actor = ", SqlValue::Text(actor.clone()));
        }
        if let Some(since) = filter.since {
            this.push("recorded_at >= ", SqlValue::Integer(micros(since)));
        }
        if let Some(until) = filter.until {
            this.push("recorded_at <= ", SqlValue::Integer(micros(until)));
        }
        this.params.push(SqlValue::Integer(limit as i64));
        this.sql
            .push_str(&format!(" ORDER BY position LIMIT ?{}", this.params.len()));
        this
    }

    fn push(&mut self, condition: &str, value: SqlValue) {
        self.params.push(value);
        self.sql
            .push_str(&format!(" AND {condition}?{}", self.params.len()));
    }
}
