//! `registries` and `upstream_proxies`: one row per live resource, keeping the aggregate's
//! current state as JSON beside the columns lists filter and sort on.
//!
//! Both read models work the same way, so one generic projection serves both: it folds each
//! event into the stored state with the aggregate's own `evolve`. Because it runs inside the
//! append transaction (which appends serialise on), it also guards the one namespace that
//! registries and proxies share: creating a name the other kind holds is refused.

use std::marker::PhantomData;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::domain::registry::{self, Registry, RegistryEvent};
use crate::domain::stored::from_stored;
use crate::domain::upstream_proxy::{self, UpstreamProxy, UpstreamProxyEvent};
use crate::domain::{Labels, PackageType, ResourceKind, ResourceName};
use crate::event_store::sqlite::micros;
use crate::event_store::{Projection, ProjectionError, RecordedEvent};

/// An aggregate whose current state is kept as a row.
pub trait Document: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Its events.
    type Event: DeserializeOwned + Send;
    /// Its kind (and so its stream category).
    const KIND: ResourceKind;
    /// Its table.
    const TABLE: &'static str;
    /// The aggregate's `evolve`.
    fn evolve(state: Option<Self>, event: &Self::Event) -> Option<Self>;
    /// Its name or key.
    fn name(&self) -> &ResourceName;
    /// Its package type.
    fn package_type(&self) -> PackageType;
    /// Its labels.
    fn labels(&self) -> &Labels;
}

impl Document for Registry {
    type Event = RegistryEvent;
    const KIND: ResourceKind = ResourceKind::Registry;
    const TABLE: &'static str = "registries";
    fn evolve(state: Option<Self>, event: &RegistryEvent) -> Option<Self> {
        registry::evolve(state, event)
    }
    fn name(&self) -> &ResourceName {
        &self.name
    }
    fn package_type(&self) -> PackageType {
        self.package_type
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
}

impl Document for UpstreamProxy {
    type Event = UpstreamProxyEvent;
    const KIND: ResourceKind = ResourceKind::UpstreamProxy;
    const TABLE: &'static str = "upstream_proxies";
    fn evolve(state: Option<Self>, event: &UpstreamProxyEvent) -> Option<Self> {
        upstream_proxy::evolve(state, event)
    }
    fn name(&self) -> &ResourceName {
        &self.key
    }
    fn package_type(&self) -> PackageType {
        self.package_type
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
}

/// The table of the other kind, whose names this kind may not take.
fn other_table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Registry => UpstreamProxy::TABLE,
        ResourceKind::UpstreamProxy => Registry::TABLE,
    }
}

/// Keeps the table of `D` in step with its events.
pub struct ResourceProjection<D>(PhantomData<fn() -> D>);

impl<D> ResourceProjection<D> {
    /// The projection.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<D> Default for ResourceProjection<D> {
    fn default() -> Self {
        Self::new()
    }
}

fn decode<D: Document>(event: &RecordedEvent) -> Result<D::Event, ProjectionError> {
    from_stored(&event.event_type, event.schema_version, &event.payload).map_err(|e| {
        ProjectionError::Payload {
            event_type: e.event_type,
            schema_version: e.schema_version,
            reason: e.reason,
        }
    })
}

fn state_json<D: Document>(doc: &D) -> serde_json::Value {
    serde_json::to_value(doc).expect("documents serialise")
}

fn name_taken(kind: ResourceKind, name: &str) -> ProjectionError {
    let other = match kind {
        ResourceKind::Registry => ResourceKind::UpstreamProxy,
        ResourceKind::UpstreamProxy => ResourceKind::Registry,
    };
    ProjectionError::Conflict(format!(
        "the name {name} is already used by {}",
        other.a_noun()
    ))
}

fn corrupt(e: serde_json::Error) -> ProjectionError {
    ProjectionError::Conflict(format!("stored state cannot be read: {e}"))
}

#[async_trait]
impl<D: Document> Projection for ResourceProjection<D> {
    fn name(&self) -> &'static str {
        D::TABLE
    }

    fn tables(&self) -> &'static [&'static str] {
        match D::KIND {
            ResourceKind::Registry => &["registries"],
            ResourceKind::UpstreamProxy => &["upstream_proxies"],
        }
    }

    async fn apply_postgres(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.stream.category != D::KIND.category() {
            return Ok(());
        }
        let domain_event = decode::<D>(event)?;
        let name = &event.stream.name;
        let current = tx
            .query_opt(
                &format!("SELECT state FROM {} WHERE name = $1", D::TABLE),
                &[name],
            )
            .await?
            .map(|row| serde_json::from_value::<D>(row.get(0)))
            .transpose()
            .map_err(corrupt)?;
        let existed = current.is_some();
        match D::evolve(current, &domain_event) {
            None => {
                tx.execute(
                    &format!("DELETE FROM {} WHERE name = $1", D::TABLE),
                    &[name],
                )
                .await?;
            }
            Some(doc) => {
                if !existed {
                    let other = format!("SELECT 1 FROM {} WHERE name = $1", other_table(D::KIND));
                    if tx.query_opt(&other, &[name]).await?.is_some() {
                        return Err(name_taken(D::KIND, name));
                    }
                }
                let labels = serde_json::to_value(doc.labels()).expect("labels serialise");
                tx.execute(
                    &format!(
                        "INSERT INTO {} (name, package_type, labels, state, version, created_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO \
                         UPDATE SET labels = EXCLUDED.labels, state = EXCLUDED.state, \
                         version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
                        D::TABLE
                    ),
                    &[
                        name,
                        &doc.package_type().as_str(),
                        &labels,
                        &state_json(&doc),
                        &(event.stream_version as i64),
                        &event.recorded_at,
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }

    fn apply_sqlite(
        &self,
        tx: &rusqlite::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        use rusqlite::OptionalExtension;
        if event.stream.category != D::KIND.category() {
            return Ok(());
        }
        let domain_event = decode::<D>(event)?;
        let name = &event.stream.name;
        let current: Option<String> = tx
            .query_row(
                &format!("SELECT state FROM {} WHERE name = ?1", D::TABLE),
                [name],
                |row| row.get(0),
            )
            .optional()?;
        let current = current
            .map(|text| serde_json::from_str::<D>(&text))
            .transpose()
            .map_err(corrupt)?;
        let existed = current.is_some();
        match D::evolve(current, &domain_event) {
            None => {
                tx.execute(&format!("DELETE FROM {} WHERE name = ?1", D::TABLE), [name])?;
            }
            Some(doc) => {
                if !existed {
                    let other = format!("SELECT 1 FROM {} WHERE name = ?1", other_table(D::KIND));
                    if tx
                        .query_row(&other, [name], |_| Ok(()))
                        .optional()?
                        .is_some()
                    {
                        return Err(name_taken(D::KIND, name));
                    }
                }
                let labels = serde_json::to_string(doc.labels()).expect("labels serialise");
                tx.execute(
                    &format!(
                        "INSERT INTO {} (name, package_type, labels, state, version, created_at, \
                         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (name) DO \
                         UPDATE SET labels = excluded.labels, state = excluded.state, \
                         version = excluded.version, updated_at = excluded.updated_at",
                        D::TABLE
                    ),
                    rusqlite::params![
                        name,
                        doc.package_type().as_str(),
                        labels,
                        state_json(&doc).to_string(),
                        event.stream_version as i64,
                        micros(event.recorded_at),
                    ],
                )?;
            }
        }
        Ok(())
    }
}

/// A resource as its read model holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<D> {
    /// The aggregate's state.
    pub doc: D,
    /// Its stream version.
    pub version: u64,
    /// When it was created (in its current life).
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}
