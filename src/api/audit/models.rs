//! The bodies of the audit routes, as the OpenAPI document names them.

use futures_util::stream::BoxStream;
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Enum, Object};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::ResourceKind;
use crate::event_store::RecordedEvent;

/// The kinds of resources whose changes the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "ResourceKind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceKindDto {
    /// An artifact registry.
    Registry,
    /// An upstream proxy.
    UpstreamProxy,
    /// A repository of a registry (`<registry>/<image>`): manifests and tags.
    Repository,
}

impl ResourceKindDto {
    /// The event-stream category of this kind.
    pub fn category(self) -> &'static str {
        match self {
            Self::Registry => ResourceKind::Registry.category(),
            Self::UpstreamProxy => ResourceKind::UpstreamProxy.category(),
            Self::Repository => crate::domain::repository::CATEGORY,
        }
    }

    fn of(category: &str) -> Option<Self> {
        [Self::Registry, Self::UpstreamProxy, Self::Repository]
            .into_iter()
            .find(|k| k.category() == category)
    }
}

/// One recorded change.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none, rename = "Event")]
pub struct EventBody {
    /// Global position in the log; also the SSE event id.
    pub position: u64,
    /// Unique id.
    pub event_id: Uuid,
    /// What kind of resource changed.
    pub resource_kind: ResourceKindDto,
    /// Its name or key.
    pub resource_name: String,
    /// The resource's version after this change.
    pub resource_version: u64,
    /// What happened, e.g. `RegistryCreated`, `UpstreamProxyCredentialsRotated`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// The version of `data`'s shape.
    pub schema_version: u32,
    /// The facts of the change (secret references appear only as `password_set`).
    pub data: serde_json::Value,
    /// Who made the change (the token's subject).
    pub actor: Option<String>,
    /// The request that made it (`X-Request-Id`).
    pub correlation_id: Option<String>,
    /// What directly caused it, when known.
    pub causation_id: Option<String>,
    /// The command that produced it.
    pub command_id: Option<Uuid>,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
}

pub fn event_body(event: RecordedEvent) -> Option<EventBody> {
    Some(EventBody {
        position: event.position,
        event_id: event.event_id,
        resource_kind: ResourceKindDto::of(&event.stream.category)?,
        resource_name: event.stream.name,
        resource_version: event.stream_version,
        event_type: event.event_type,
        schema_version: event.schema_version,
        data: event.payload,
        actor: event.metadata.actor,
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        command_id: event.metadata.command_id,
        recorded_at: event.recorded_at,
    })
}

/// A page of the log.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    /// Events in global order.
    pub items: Vec<EventBody>,
    /// Pass as `after` (or `page_token`) for the next page; absent when this page was not full.
    pub next_page_token: Option<String>,
}

/// One field a change changed.
#[derive(Debug, Clone, Object)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// Its value before (null when absent).
    pub before: serde_json::Value,
    /// Its value after (null when absent).
    pub after: serde_json::Value,
}

/// One change to a resource, with what it changed.
#[derive(Debug, Clone, Object)]
pub struct HistoryItem {
    /// The recorded event.
    pub event: EventBody,
    /// The fields it changed, with their values before and after.
    pub changes: Vec<FieldChange>,
}

/// A page of one resource's history, oldest first, across deletes and re-creations.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HistoryPage {
    /// Changes in order.
    pub items: Vec<HistoryItem>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Response to `list_events`.
#[derive(ApiResponse)]
pub enum EventList {
    /// One page.
    #[oai(status = 200)]
    Ok(Json<EventPage>),
}

/// Response to the history operations.
#[derive(ApiResponse)]
pub enum HistoryResponse {
    /// One page.
    #[oai(status = 200)]
    Ok(Json<HistoryPage>),
}

/// Response to `stream_events`.
#[derive(ApiResponse)]
pub enum EventStreamResponse {
    /// Events as they are committed (`id` = position, `event` = type, `data` = the Event).
    #[oai(status = 200)]
    Ok(EventStream<BoxStream<'static, EventBody>>),
}
