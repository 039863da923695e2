//! Use cases: load a stream, decide, append (the projections follow in the same transaction),
//! return the result. No HTTP types here; `api/` maps these results to responses.

mod registries;
mod upstream_proxies;

use uuid::Uuid;

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
use crate::projections::resources::Document;
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
    let mut state = None;
    let mut version = 0;
    for event in &events {
        let domain: D::Event = from_stored(&event.event_type, event.schema_version, &event.payload)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        state = D::evolve(state, &domain);
        version = event.stream_version;
    }
    Ok(Loaded { state, version })
}

async fn append<D: Document, E: serde::Serialize>(
    backend: &Backend,
    ctx: &Context,
    name: &ResourceName,
    expected: ExpectedVersion,
    events: &[E],
) -> Result<AppendOutcome, StoreError> {
    let events = events
        .iter()
        .map(|event| {
            let (event_type, payload) = to_stored(event);
            NewEvent::new(event_type, crate::domain::stored::SCHEMA_VERSION, payload)
        })
        .collect();
    backend
        .store()
        .append(AppendRequest {
            stream: stream_of::<D>(name),
            expected,
            events,
            metadata: Metadata {
                actor: Some(ctx.actor.clone()),
                correlation_id: Some(ctx.correlation_id.clone()),
                causation_id: None,
                command_id: Some(Uuid::now_v7()),
            },
        })
        .await
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
