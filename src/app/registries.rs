//! Registry use cases.

use super::{App, AppError, Context, RETRIES, append, check_if_match, load, replay};
use crate::domain::registry::{
    CreateRegistry, Registry, RegistryCommand, RegistryError, UpdateRegistry, decide,
};
use crate::domain::{Labels, PackageType, ResourceKind, ResourceName};
use crate::event_store::{ExpectedVersion, StoreError};
use crate::projections::resource_queries::{self as queries, ListQuery, Page};
use crate::projections::resources::Stored;

/// A registry to create, already parsed at the edge.
#[derive(Debug, Clone)]
pub struct NewRegistry {
    /// Its name.
    pub name: ResourceName,
    /// What it holds.
    pub package_type: PackageType,
    /// What it is for.
    pub description: Option<String>,
    /// Labels.
    pub labels: Labels,
    /// Upstream proxies in order.
    pub upstreams: Vec<ResourceName>,
    /// Whether anyone may pull without credentials.
    pub public: bool,
    /// Whether pushes may replace existing versions.
    pub allow_overwrite: bool,
}

/// Changes to a registry; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct RegistryChanges {
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New labels.
    pub labels: Option<Labels>,
    /// New upstream list.
    pub upstreams: Option<Vec<ResourceName>>,
    /// New visibility.
    pub public: Option<bool>,
    /// New overwrite policy.
    pub allow_overwrite: Option<bool>,
}

impl App {
    /// Creates a registry. With an idempotency key, a retry returns what the first attempt made.
    pub async fn create_registry(
        &self,
        ctx: &Context,
        new: NewRegistry,
    ) -> Result<Stored<Registry>, AppError> {
        let name = new.name.clone();
        if let Some(first) = replay::<Registry>(&self.backend, ctx, &name).await? {
            return Ok(first);
        }
        match self.try_create_registry(ctx, new).await {
            // A concurrent retry of the same request may have won.
            Err(AppError::Registry(RegistryError::AlreadyExists(_)))
                if ctx.idempotency.is_some() =>
            {
                replay::<Registry>(&self.backend, ctx, &name)
                    .await?
                    .ok_or_else(|| RegistryError::AlreadyExists(name).into())
            }
            other => other,
        }
    }

    async fn try_create_registry(
        &self,
        ctx: &Context,
        new: NewRegistry,
    ) -> Result<Stored<Registry>, AppError> {
        let loaded = load::<Registry>(&self.backend, &new.name).await?;
        let holder = queries::holder_of(&self.backend, &new.name).await?;
        let command = RegistryCommand::Create(CreateRegistry {
            name: new.name.clone(),
            package_type: new.package_type,
            description: new.description,
            labels: new.labels,
            upstreams: new.upstreams,
            public: new.public,
            allow_overwrite: new.allow_overwrite,
            known_upstreams: queries::proxy_catalog(&self.backend).await?,
            name_taken_by: holder.filter(|k| *k != ResourceKind::Registry),
        });
        let events = decide(&loaded.state, command)?;
        match append::<Registry, _>(
            &self.backend,
            ctx,
            &new.name,
            ExpectedVersion::Exact(loaded.version),
            &events,
        )
        .await
        {
            Ok(outcome) if outcome.replayed => {
                if let Some(first) = replay::<Registry>(&self.backend, ctx, &new.name).await? {
                    return Ok(first);
                }
            }
            Ok(_) => {}
            // Someone else created it first.
            Err(StoreError::VersionConflict { .. }) => {
                return Err(RegistryError::AlreadyExists(new.name).into());
            }
            Err(e) => return Err(e.into()),
        }
        self.registry(&new.name).await
    }

    /// The registry named `name`.
    pub async fn registry(&self, name: &ResourceName) -> Result<Stored<Registry>, AppError> {
        queries::get::<Registry>(&self.backend, name)
            .await?
            .ok_or_else(|| RegistryError::NotFound.into())
    }

    /// A page of registries.
    pub async fn registries(&self, query: &ListQuery) -> Result<Page<Stored<Registry>>, AppError> {
        Ok(queries::list::<Registry>(&self.backend, query).await?)
    }

    /// Changes a registry; with `if_match`, only if it is at that version.
    pub async fn update_registry(
        &self,
        ctx: &Context,
        name: &ResourceName,
        changes: RegistryChanges,
        if_match: Option<u64>,
    ) -> Result<Stored<Registry>, AppError> {
        for _ in 0..RETRIES {
            let loaded = load::<Registry>(&self.backend, name).await?;
            if loaded.state.is_some() {
                check_if_match(ResourceKind::Registry, if_match, loaded.version)?;
            }
            let known_upstreams = match &changes.upstreams {
                Some(_) => queries::proxy_catalog(&self.backend).await?,
                None => Default::default(),
            };
            let command = RegistryCommand::Update(UpdateRegistry {
                description: changes.description.clone(),
                labels: changes.labels.clone(),
                upstreams: changes.upstreams.clone(),
                public: changes.public,
                allow_overwrite: changes.allow_overwrite,
                known_upstreams,
            });
            let events = decide(&loaded.state, command)?;
            if events.is_empty() {
                return self.registry(name).await;
            }
            let expected = ExpectedVersion::Exact(loaded.version);
            match append::<Registry, _>(&self.backend, ctx, name, expected, &events).await {
                Ok(_) => return self.registry(name).await,
                Err(StoreError::VersionConflict { .. }) if if_match.is_none() => continue,
                Err(StoreError::VersionConflict { actual, .. }) => {
                    return Err(AppError::VersionMismatch {
                        kind: ResourceKind::Registry,
                        expected: loaded.version,
                        current: actual,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "registry {name} kept changing concurrently; try again"
        )))
    }

    /// Deletes a registry; with `if_match`, only if it is at that version.
    pub async fn delete_registry(
        &self,
        ctx: &Context,
        name: &ResourceName,
        if_match: Option<u64>,
    ) -> Result<(), AppError> {
        let loaded = load::<Registry>(&self.backend, name).await?;
        if loaded.state.is_some() {
            check_if_match(ResourceKind::Registry, if_match, loaded.version)?;
        }
        let events = decide(&loaded.state, RegistryCommand::Delete)?;
        let expected = ExpectedVersion::Exact(loaded.version);
        match append::<Registry, _>(&self.backend, ctx, name, expected, &events).await {
            Ok(_) => Ok(()),
            Err(StoreError::VersionConflict { actual, .. }) => Err(AppError::VersionMismatch {
                kind: ResourceKind::Registry,
                expected: loaded.version,
                current: actual,
            }),
            Err(e) => Err(e.into()),
        }
    }
}
