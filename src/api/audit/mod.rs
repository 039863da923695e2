//! `/api/v1/events` and the history routes: the event log in global order (also as a live
//! Server-Sent Events stream) and every change to one registry or upstream proxy.

use std::time::Duration;

use futures_util::StreamExt;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use time::OffsetDateTime;

mod models;

pub use models::*;

use super::ApiTags;
use super::common;
use super::error::ApiError;
use super::schema::{Count, Name, Position};
use super::security::{BearerAuth, RequestId};
use super::timestamp::Timestamp;
use crate::app::{App, HistoryEntry};
use crate::auth::Scope;
use crate::domain::registry::Registry;
use crate::domain::upstream_proxy::UpstreamProxy;
use crate::event_store::EventFilter;
use crate::projections::resources::Document;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// The `limit` parameter, whose bounds the spec states and `limit` checks.
type Limit = Count<1, MAX_LIMIT>;

fn limit(value: Option<u32>) -> Result<usize, ApiError> {
    match value.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n as usize),
        _ => Err(ApiError::invalid(
            "VALIDATION_FAILED",
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

fn position(field: &str, value: Option<&str>) -> Result<u64, ApiError> {
    value.filter(|v| !v.is_empty()).map_or(Ok(0), |v| {
        v.trim().parse().map_err(|_| {
            ApiError::invalid(
                "VALIDATION_FAILED",
                field,
                format!("{field} must be an event position (a whole number)"),
            )
        })
    })
}

struct Filters {
    resource_kind: Option<ResourceKindDto>,
    resource_name: Option<String>,
    event_types: Vec<String>,
    actor: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl Filters {
    fn into_filter(self) -> EventFilter {
        let category = self.resource_kind.map(|k| k.category().to_owned());
        EventFilter {
            // Without a kind, a name matches any kind's resource of that name.
            category,
            stream_name: self.resource_name.filter(|n| !n.is_empty()),
            event_types: self.event_types,
            actor: self.actor.filter(|a| !a.is_empty()),
            since: self.since,
            until: self.until,
        }
    }
}

async fn history<D: Document>(
    app: &App,
    field: &str,
    name: &str,
    page_token: Option<&str>,
    limit_param: Option<u32>,
) -> Result<HistoryResponse, ApiError> {
    let name = common::name(field, name)?;
    let after = position("page_token", page_token)?;
    let limit = limit(limit_param)?;
    let entries = app
        .history::<D>(&name, after, limit + 1)
        .await?
        .ok_or_else(|| common::not_found(format!("{} {name} has no history", D::KIND.noun())))?;
    let more = entries.len() > limit;
    let items: Vec<HistoryItem> = entries
        .into_iter()
        .take(limit)
        .filter_map(|HistoryEntry { event, changes }| {
            Some(HistoryItem {
                event: event_body(event)?,
                changes: changes
                    .into_iter()
                    .map(|c| FieldChange {
                        field: c.field,
                        before: c.before,
                        after: c.after,
                    })
                    .collect(),
            })
        })
        .collect();
    let next = more
        .then(|| items.last().map(|i| i.event.resource_version.to_string()))
        .flatten();
    Ok(HistoryResponse::Ok(Json(HistoryPage {
        items,
        next_page_token: next,
    })))
}

/// The audit resources.
pub struct AuditApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl AuditApi {
    /// Read the event log in global order, filtered, a page at a time.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/events", method = "get", operation_id = "list_events")]
    async fn list(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// Only changes to this kind of resource.
        resource_kind: Query<Option<ResourceKindDto>>,
        /// Only changes to resources of this name.
        resource_name: Query<Option<String>>,
        /// Only these event types (repeat the parameter for several).
        #[oai(name = "type")]
        event_type: Query<Vec<String>>,
        /// Only changes by this actor.
        actor: Query<Option<String>>,
        /// Only changes recorded at or after this time (RFC 3339).
        since: Query<Option<Timestamp>>,
        /// Only changes recorded at or before this time (RFC 3339).
        until: Query<Option<Timestamp>>,
        /// Only events after this position.
        after: Query<Option<Position>>,
        /// The previous page's `next_page_token` (same as `after`).
        page_token: Query<Option<Position>>,
        /// Page size, 1 to 1000 (default 100).
        limit: Query<Option<Limit>>,
    ) -> Result<EventList, ApiError> {
        auth.context(Scope::AuditRead, &request_id)?;
        // Both are checked, though a page token wins over `after`.
        let after = position("after", after.as_deref())?;
        let after = match page_token.0.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => position("page_token", Some(token))?,
            None => after,
        };
        let limit = self::limit(limit.0.map(|l| l.0))?;
        let filter = Filters {
            resource_kind: resource_kind.0,
            resource_name: resource_name.0,
            event_types: event_type.0,
            actor: actor.0,
            since: since.0.map(|t| t.0),
            until: until.0.map(|t| t.0),
        }
        .into_filter();
        let events = app.events(after, &filter, limit).await?;
        let full = events.len() == limit;
        let next = full
            .then(|| events.last().map(|e| e.position.to_string()))
            .flatten();
        Ok(EventList::Ok(Json(EventPage {
            items: events.into_iter().filter_map(event_body).collect(),
            next_page_token: next,
        })))
    }

    /// Follow the log live as Server-Sent Events, from a position (`after` or the
    /// `Last-Event-ID` of a reconnecting client) or, without one, from now.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/events/stream",
        method = "get",
        operation_id = "stream_events"
    )]
    async fn stream(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// Only changes to this kind of resource.
        resource_kind: Query<Option<ResourceKindDto>>,
        /// Only changes to resources of this name.
        resource_name: Query<Option<String>>,
        /// Only these event types.
        #[oai(name = "type")]
        event_type: Query<Vec<String>>,
        /// Only changes by this actor.
        actor: Query<Option<String>>,
        /// Start after this position.
        after: Query<Option<Position>>,
        /// Sent by reconnecting clients: resume after this position.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<Position>>,
    ) -> Result<EventStreamResponse, ApiError> {
        auth.context(Scope::AuditRead, &request_id)?;
        let filter = Filters {
            resource_kind: resource_kind.0,
            resource_name: resource_name.0,
            event_types: event_type.0,
            actor: actor.0,
            since: None,
            until: None,
        }
        .into_filter();
        let start = match (last_event_id.as_deref(), after.as_deref()) {
            (Some(id), _) if !id.is_empty() => position("Last-Event-ID", Some(id))?,
            (_, Some(after)) if !after.is_empty() => position("after", Some(after))?,
            _ => app.backend().store().head().await.map_err(ApiError::from)?,
        };
        let events = crate::app::follow(app.clone(), start, filter)
            .filter_map(|event| async move { event_body(event) })
            .boxed();
        Ok(EventStreamResponse::Ok(
            EventStream::new(events)
                .keep_alive(Duration::from_secs(15))
                .to_event(|body| {
                    let id = body.position.to_string();
                    let kind = body.event_type.clone();
                    poem::web::sse::Event::message(
                        serde_json::to_string(&poem_openapi::types::ToJSON::to_json(&body))
                            .unwrap_or_default(),
                    )
                    .id(id)
                    .event_type(kind)
                }),
        ))
    }

    /// Every change to a registry, oldest first, with what it changed; also after it was
    /// deleted, and across a delete and re-creation of the name.
    #[oai(
        path = "/registries/:name/history",
        method = "get",
        operation_id = "get_registry_history"
    )]
    async fn registry_history(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
        /// The previous page's `next_page_token`.
        page_token: Query<Option<Position>>,
        /// Page size, 1 to 1000 (default 100).
        limit: Query<Option<Limit>>,
    ) -> Result<HistoryResponse, ApiError> {
        auth.context(Scope::AuditRead, &request_id)?;
        history::<Registry>(
            &app,
            "name",
            &name,
            page_token.as_deref(),
            limit.0.map(|l| l.0),
        )
        .await
    }

    /// Every change to an upstream proxy, oldest first, with what it changed.
    #[oai(
        path = "/upstream-proxies/:key/history",
        method = "get",
        operation_id = "get_upstream_proxy_history"
    )]
    async fn upstream_proxy_history(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The proxy's key.
        key: Path<Name>,
        /// The previous page's `next_page_token`.
        page_token: Query<Option<Position>>,
        /// Page size, 1 to 1000 (default 100).
        limit: Query<Option<Limit>>,
    ) -> Result<HistoryResponse, ApiError> {
        auth.context(Scope::AuditRead, &request_id)?;
        history::<UpstreamProxy>(
            &app,
            "key",
            &key,
            page_token.as_deref(),
            limit.0.map(|l| l.0),
        )
        .await
    }
}
