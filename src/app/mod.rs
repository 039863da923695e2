//! Use cases: load a stream, decide, append (the projections follow in the same transaction),
//! return the result. No HTTP types here; `api/` maps these results to responses.

mod artifacts;
mod audit;
mod live;
mod registries;
mod upstream_proxies;

use uuid::Uuid;

pub use artifacts::{ManifestPush, TagHistory};
pub use audit::{FieldChange, HistoryEntry, redact_secrets};
pub use live::follow;
pub use registries::{NewRegistry, RegistryChanges};

pub use upstream_proxies::{AuthInput, NewUpstreamProxy, UpstreamProxyChanges};

use crate::domain::registry::RegistryError;
use crate::domain::stored::{from_stored, to_stored};
use crate::domain::upstream_proxy::UpstreamProxyError;
use crate::domain::{ResourceKind, ResourceName};
use crate::event_store::{
    AppendOutcome, AppendRequest, Backend, ExpectedVersion, Metadata, NewEvent, StoreError,
    StreamId,
};
use crate::projections::resources::{Document, Stored};
use crate::secrets::SecretBox;

/// How often a write without `If-Match` is retried when another write to the same stream wins.
const RETRIES: usize = 5;

/// Who asks, and under which request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The authenticated subject.
    pub actor: String,
    /// The request id, stored as the correlation id.
    pub correlation_id: String,
    /// Set when the client sent an `Idempotency-Key`: a retry returns the first outcome.
    pub idempotency: Option<Idempotency>,
}

/// What makes a create request idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The command id the key stands for.
    pub command_id: Uuid,
    /// A digest of the request, to refuse the key's reuse for another request.
    pub fingerprint: String,
}

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The registry aggregate refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The upstream-proxy aggregate refused.
    #[error(transparent)]
    UpstreamProxy(#[from] UpstreamProxyError),
    /// `If-Match` named another version.
    #[error("the {kind} is at version {current}, not {expected}", kind = .kind.noun())]
    VersionMismatch {
        /// Which kind of resource.
        kind: ResourceKind,
        /// The version the client had.
        expected: u64,
        /// The current version.
        current: u64,
    },
    /// The repository aggregate refused.
    #[error(transparent)]
    Repository(#[from] crate::domain::repository::RepositoryError),
    /// An `Idempotency-Key` was reused for a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// A concurrent change conflicted.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Projection {
                source: crate::event_store::ProjectionError::Conflict(message),
                ..
            } => Self::Conflict(message),
            StoreError::CommandReused(_) => Self::IdempotencyKeyReused,
            other => Self::Store(other),
        }
    }
}

/// The application: the store and the server's secrets.
#[derive(Clone)]
pub struct App {
    backend: Backend,
    secrets: SecretBox,
}

impl App {
    /// The application over a backend.
    pub fn new(backend: Backend, secrets: SecretBox) -> Self {
        Self { backend, secrets }
    }

    /// The backend, for queries.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
}

/// A resource's state and version folded from its stream.
struct Loaded<D> {
    state: Option<D>,
    version: u64,
}

fn stream_of<D: Document>(name: &ResourceName) -> StreamId {
    StreamId::new(D::KIND.category(), name.as_str())
}

async fn load<D: Document>(backend: &Backend, name: &ResourceName) -> Result<Loaded<D>, AppError> {
    let events = backend
        .store()
        .read_stream(&stream_of::<D>(name), None)
        .await?;
    Ok(Loaded {
        state: fold_stored::<D>(&events)?.map(|stored| stored.doc),
        // The stream's version, also when its last event deleted the resource.
        version: events.last().map_or(0, |e| e.stream_version),
    })
}

async fn append<D: Document, E: serde::Serialize>(
    backend: &Backend,
    ctx: &Context,
    name: &ResourceName,
    expected: ExpectedVersion,
    events: &[E],
) -> Result<AppendOutcome, StoreError> {
    backend
        .store()
        .append(request(ctx, stream_of::<D>(name), expected, events))
        .await
}

/// The append of domain `events` to `stream` on behalf of `ctx`: metadata from the request,
/// and the idempotency key's command id when there is one.
fn request<E: serde::Serialize>(
    ctx: &Context,
    stream: StreamId,
    expected: ExpectedVersion,
    events: &[E],
) -> AppendRequest {
    let events = events
        .iter()
        .map(|event| {
            let (event_type, payload) = to_stored(event);
            NewEvent::new(event_type, crate::domain::stored::SCHEMA_VERSION, payload)
        })
        .collect();
    AppendRequest {
        stream,
        expected,
        events,
        metadata: Metadata {
            actor: Some(ctx.actor.clone()),
            correlation_id: Some(ctx.correlation_id.clone()),
            causation_id: None,
            command_id: Some(
                ctx.idempotency
                    .as_ref()
                    .map_or_else(Uuid::now_v7, |i| i.command_id),
            ),
        },
        fingerprint: ctx.idempotency.as_ref().map(|i| i.fingerprint.clone()),
    }
}

/// Folds recorded events into the resource they describe, with its version and times; `None`
/// when the events leave it absent (never created, or deleted).
pub fn fold_stored<D: Document>(
    events: &[crate::event_store::RecordedEvent],
) -> Result<Option<Stored<D>>, AppError> {
    let mut current: Option<Stored<D>> = None;
    for event in events {
        let domain: D::Event = from_stored(&event.event_type, event.schema_version, &event.payload)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let created_at = current.as_ref().map(|c| c.created_at);
        current = D::evolve(current.map(|c| c.doc), &domain).map(|doc| Stored {
            doc,
            version: event.stream_version,
            created_at: created_at.unwrap_or(event.recorded_at),
            updated_at: event.recorded_at,
        });
    }
    Ok(current)
}

/// The response a replayed create gives: the resource as the first attempt left it.
async fn replay<D: Document>(
    backend: &Backend,
    ctx: &Context,
    name: &ResourceName,
) -> Result<Option<Stored<D>>, AppError> {
    let Some(idempotency) = &ctx.idempotency else {
        return Ok(None);
    };
    let Some((outcome, fingerprint)) = backend.store().find_command(idempotency.command_id).await?
    else {
        return Ok(None);
    };
    if fingerprint.as_deref() != Some(idempotency.fingerprint.as_str())
        || outcome
            .events
            .first()
            .is_none_or(|e| e.stream.name != name.as_str())
    {
        return Err(AppError::IdempotencyKeyReused);
    }
    let events = backend
        .store()
        .read_stream(&stream_of::<D>(name), None)
        .await?;
    let upto: Vec<_> = events
        .into_iter()
        .filter(|e| e.stream_version <= outcome.stream_version)
        .collect();
    fold_stored::<D>(&upto)
}

/// Checks `If-Match` against the loaded version.
fn check_if_match(kind: ResourceKind, if_match: Option<u64>, current: u64) -> Result<(), AppError> {
    match if_match {
        Some(expected) if expected != current => Err(AppError::VersionMismatch {
            kind,
            expected,
            current,
        }),
        _ => Ok(()),
    }
}
