//! The values that go into and come out of the event log.

use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A global position in the log: strictly increasing in commit order, starting at 1.
pub type Position = u64;

/// Names one stream: a category (the kind of thing, e.g. `registry`) and the thing's name.
/// A name that is deleted and created again keeps its stream, so its history reads through both lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The kind of thing the stream records, e.g. `registry` or `upstream_proxy`.
    pub category: String,
    /// The name of the thing within its category.
    pub name: String,
}

impl StreamId {
    /// A stream id from its category and name.
    pub fn new(category: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            category: category.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.category, self.name)
    }
}

/// What an append expects the stream's version to be before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be exactly at this version (0 is the same as `NoStream`).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Who and what caused an event; stored beside the payload, never inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The authenticated subject that issued the command.
    pub actor: Option<String>,
    /// Ties together everything one request caused (the request id).
    pub correlation_id: Option<String>,
    /// The event or request that directly caused this one.
    pub causation_id: Option<String>,
    /// The command's id: a retried command with the same id appends nothing.
    pub command_id: Option<Uuid>,
}

/// An event to append: its identity, stored type name, schema version and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique across the whole log.
    pub event_id: Uuid,
    /// The stable stored type name, e.g. `RegistryCreated`; never renamed once written.
    pub event_type: String,
    /// The payload's schema version; a new shape is a new version.
    pub schema_version: u32,
    /// The facts, as JSON.
    pub payload: Value,
}

impl NewEvent {
    /// A new event with a fresh time-ordered id.
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            payload,
        }
    }
}

/// One append: events for one stream, all or nothing.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream: StreamId,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// Stored with every event of the append.
    pub metadata: Metadata,
    /// With a command id: a digest of the request behind the command, so that reusing the id
    /// for a different request is refused rather than answered with the first outcome.
    pub fingerprint: Option<String>,
}

/// An event as the log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global position.
    pub position: Position,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version within the stream, starting at 1 and contiguous.
    pub stream_version: u64,
    /// Unique id.
    pub event_id: Uuid,
    /// Stored type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u32,
    /// The facts.
    pub payload: Value,
    /// Who and what caused it.
    pub metadata: Metadata,
    /// When the database recorded it.
    pub recorded_at: OffsetDateTime,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendOutcome {
    /// The events recorded (for a replayed command: the ones its first attempt recorded).
    pub events: Vec<RecordedEvent>,
    /// The stream's version after the append.
    pub stream_version: u64,
    /// True when the command id had been seen and nothing new was appended.
    pub replayed: bool,
}

/// Which events a global read keeps. Empty fields keep everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this stream category.
    pub category: Option<String>,
    /// Only streams with this name (usually together with `category`).
    pub stream_name: Option<String>,
    /// Only these event types.
    pub event_types: Vec<String>,
    /// Only events caused by this actor.
    pub actor: Option<String>,
    /// Only events recorded at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events recorded at or before this time.
    pub until: Option<OffsetDateTime>,
}
