//! Upstream-proxy use cases. Passwords are sealed and stored before the events that refer to
//! them are appended, and forgotten when the proxy no longer refers to them.

use uuid::Uuid;

use super::{App, AppError, Context, RETRIES, append, check_if_match, load, replay};
use crate::domain::upstream_proxy::{
    AuthChange, CacheSettings, CreateUpstreamProxy, DockerSource, ProxyAuth, UpdateUpstreamProxy,
    UpstreamProxy, UpstreamProxyCommand, UpstreamProxyError, decide, secret_of,
};
use crate::domain::{Labels, PackageType, RemoteUrl, ResourceKind, ResourceName};
use crate::event_store::{ExpectedVersion, StoreError};
use crate::projections::resource_queries::{self as queries, ListQuery, Page};
use crate::projections::resources::Stored;

/// Credentials as the client gives them, password in the clear.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthInput {
    /// No credentials.
    Anonymous,
    /// A user name and, optionally (on update), a new password.
    UsernamePassword {
        /// The user name.
        username: String,
        /// The password; `None` keeps the stored one.
        password: Option<String>,
    },
}

impl std::fmt::Debug for AuthInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::UsernamePassword { username, .. } => {
                write!(f, "UsernamePassword({username}, [redacted])")
            }
        }
    }
}

/// An upstream proxy to create, already parsed at the edge.
#[derive(Debug, Clone)]
pub struct NewUpstreamProxy {
    /// Its key.
    pub key: ResourceName,
    /// What it proxies.
    pub package_type: PackageType,
    /// Docker Hub or custom (Docker only).
    pub source: Option<DockerSource>,
    /// Remote URL.
    pub url: Option<RemoteUrl>,
    /// Credentials.
    pub auth: AuthInput,
    /// What it is for.
    pub description: Option<String>,
    /// Labels.
    pub labels: Labels,
    /// Cache settings.
    pub cache: CacheSettings,
    /// Whether anyone may pull through it without credentials.
    pub public: bool,
}

/// Changes to a proxy; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UpstreamProxyChanges {
    /// New source.
    pub source: Option<DockerSource>,
    /// New URL.
    pub url: Option<RemoteUrl>,
    /// New credentials.
    pub auth: Option<AuthInput>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New labels.
    pub labels: Option<Labels>,
    /// New cache settings.
    pub cache: Option<CacheSettings>,
    /// Public or private.
    pub public: Option<bool>,
}

impl App {
    /// Seals a new password, returning the domain's view of the credentials.
    async fn seal_auth(&self, auth: AuthInput) -> Result<AuthChange, AppError> {
        Ok(match auth {
            AuthInput::Anonymous => AuthChange::Anonymous,
            AuthInput::UsernamePassword { username, password } => {
                let secret_id = match password {
                    Some(password) => {
                        let id = Uuid::now_v7();
                        self.backend
                            .put_secret(id, &self.secrets.seal(&password))
                            .await?;
                        Some(id)
                    }
                    None => None,
                };
                AuthChange::UsernamePassword {
                    username,
                    secret_id,
                }
            }
        })
    }

    /// Forgets a secret that no proxy state refers to any more.
    async fn forget_secret(&self, before: Option<Uuid>, after: Option<Uuid>) {
        if let Some(id) = before.filter(|id| Some(*id) != after)
            && let Err(e) = self.backend.delete_secret(id).await
        {
            tracing::warn!(error = %e, "could not delete a replaced upstream secret");
        }
    }

    /// Creates an upstream proxy. With an idempotency key, a retry returns what the first
    /// attempt made.
    pub async fn create_upstream_proxy(
        &self,
        ctx: &Context,
        new: NewUpstreamProxy,
    ) -> Result<Stored<UpstreamProxy>, AppError> {
        let key = new.key.clone();
        if let Some(first) = replay::<UpstreamProxy>(&self.backend, ctx, &key).await? {
            return Ok(first);
        }
        match self.try_create_upstream_proxy(ctx, new).await {
            // A concurrent retry of the same request may have won.
            Err(AppError::UpstreamProxy(UpstreamProxyError::AlreadyExists(_)))
                if ctx.idempotency.is_some() =>
            {
                replay::<UpstreamProxy>(&self.backend, ctx, &key)
                    .await?
                    .ok_or_else(|| UpstreamProxyError::AlreadyExists(key).into())
            }
            other => other,
        }
    }

    async fn try_create_upstream_proxy(
        &self,
        ctx: &Context,
        new: NewUpstreamProxy,
    ) -> Result<Stored<UpstreamProxy>, AppError> {
        let loaded = load::<UpstreamProxy>(&self.backend, &new.key).await?;
        if let Some(existing) = &loaded.state {
            return Err(UpstreamProxyError::AlreadyExists(existing.key.clone()).into());
        }
        let holder = queries::holder_of(&self.backend, &new.key).await?;
        let auth = self.seal_auth(new.auth).await?;
        let new_secret = match &auth {
            AuthChange::UsernamePassword { secret_id, .. } => *secret_id,
            AuthChange::Anonymous => None,
        };
        let command = UpstreamProxyCommand::Create(CreateUpstreamProxy {
            key: new.key.clone(),
            package_type: new.package_type,
            source: new.source,
            url: new.url,
            auth,
            description: new.description,
            labels: new.labels,
            cache: new.cache,
            public: new.public,
            name_taken_by: holder.filter(|k| *k != ResourceKind::UpstreamProxy),
        });
        let outcome = match decide(&loaded.state, command) {
            Ok(events) => {
                let expected = ExpectedVersion::Exact(loaded.version);
                append::<UpstreamProxy, _>(&self.backend, ctx, &new.key, expected, &events)
                    .await
                    .map_err(|e| match e {
                        StoreError::VersionConflict { .. } => {
                            UpstreamProxyError::AlreadyExists(new.key.clone()).into()
                        }
                        other => AppError::from(other),
                    })
            }
            Err(e) => Err(e.into()),
        };
        match outcome {
            Err(e) => {
                self.forget_secret(new_secret, None).await;
                return Err(e);
            }
            Ok(outcome) if outcome.replayed => {
                // A concurrent retry got there first: this attempt's secret is not needed.
                self.forget_secret(new_secret, None).await;
                if let Some(first) = replay::<UpstreamProxy>(&self.backend, ctx, &new.key).await? {
                    return Ok(first);
                }
            }
            Ok(_) => {}
        }
        self.upstream_proxy(&new.key).await
    }

    /// The user name and password `proxy` authenticates with, if it has them.
    pub async fn upstream_credentials(
        &self,
        proxy: &UpstreamProxy,
    ) -> Result<Option<(String, String)>, AppError> {
        let ProxyAuth::UsernamePassword {
            username,
            secret_id,
        } = &proxy.auth
        else {
            return Ok(None);
        };
        let sealed = self.backend.get_secret(*secret_id).await?.ok_or_else(|| {
            AppError::Conflict(format!(
                "the password of upstream proxy {} is missing from the secret store",
                proxy.key
            ))
        })?;
        let password = self.secrets.open(&sealed).map_err(|e| {
            AppError::Conflict(format!(
                "the password of upstream proxy {} cannot be opened: {e}",
                proxy.key
            ))
        })?;
        Ok(Some((username.clone(), password)))
    }

    /// The upstream proxy with key `key`.
    pub async fn upstream_proxy(
        &self,
        key: &ResourceName,
    ) -> Result<Stored<UpstreamProxy>, AppError> {
        queries::get::<UpstreamProxy>(&self.backend, key)
            .await?
            .ok_or_else(|| UpstreamProxyError::NotFound.into())
    }

    /// A page of upstream proxies.
    pub async fn upstream_proxies(
        &self,
        query: &ListQuery,
    ) -> Result<Page<Stored<UpstreamProxy>>, AppError> {
        Ok(queries::list::<UpstreamProxy>(&self.backend, query).await?)
    }

    /// Changes an upstream proxy; with `if_match`, only if it is at that version.
    pub async fn update_upstream_proxy(
        &self,
        ctx: &Context,
        key: &ResourceName,
        changes: UpstreamProxyChanges,
        if_match: Option<u64>,
    ) -> Result<Stored<UpstreamProxy>, AppError> {
        let auth = match changes.auth.clone() {
            Some(auth) => Some(self.seal_auth(auth).await?),
            None => None,
        };
        let new_secret = match &auth {
            Some(AuthChange::UsernamePassword { secret_id, .. }) => *secret_id,
            _ => None,
        };
        for _ in 0..RETRIES {
            let loaded = load::<UpstreamProxy>(&self.backend, key).await?;
            let old_secret = loaded.state.as_ref().and_then(secret_of);
            let result = async {
                if loaded.state.is_some() {
                    check_if_match(ResourceKind::UpstreamProxy, if_match, loaded.version)?;
                }
                let command = UpstreamProxyCommand::Update(UpdateUpstreamProxy {
                    source: changes.source,
                    url: changes.url.clone(),
                    auth: auth.clone(),
                    description: changes.description.clone(),
                    labels: changes.labels.clone(),
                    cache: changes.cache,
                    public: changes.public,
                });
                let events = decide(&loaded.state, command)?;
                if events.is_empty() {
                    return Ok(None);
                }
                let expected = ExpectedVersion::Exact(loaded.version);
                append::<UpstreamProxy, _>(&self.backend, ctx, key, expected, &events)
                    .await
                    .map(Some)
                    .map_err(AppError::from)
            }
            .await;
            match result {
                Ok(_) => {
                    let now = load::<UpstreamProxy>(&self.backend, key).await?;
                    let current = now.state.as_ref().and_then(secret_of);
                    self.forget_secret(old_secret, current).await;
                    self.forget_secret(new_secret, current).await;
                    return self.upstream_proxy(key).await;
                }
                Err(AppError::Store(StoreError::VersionConflict { .. })) if if_match.is_none() => {
                    continue;
                }
                Err(AppError::Store(StoreError::VersionConflict { actual, .. })) => {
                    self.forget_secret(new_secret, None).await;
                    return Err(AppError::VersionMismatch {
                        kind: ResourceKind::UpstreamProxy,
                        expected: loaded.version,
                        current: actual,
                    });
                }
                Err(e) => {
                    self.forget_secret(new_secret, None).await;
                    return Err(e);
                }
            }
        }
        self.forget_secret(new_secret, None).await;
        Err(AppError::Conflict(format!(
            "upstream proxy {key} kept changing concurrently; try again"
        )))
    }

    /// Deletes an upstream proxy that no registry uses, and forgets its password.
    pub async fn delete_upstream_proxy(
        &self,
        ctx: &Context,
        key: &ResourceName,
        if_match: Option<u64>,
    ) -> Result<(), AppError> {
        let loaded = load::<UpstreamProxy>(&self.backend, key).await?;
        if loaded.state.is_some() {
            check_if_match(ResourceKind::UpstreamProxy, if_match, loaded.version)?;
        }
        let used_by = queries::registries_using(&self.backend, key).await?;
        let events = decide(&loaded.state, UpstreamProxyCommand::Delete { used_by })?;
        let expected = ExpectedVersion::Exact(loaded.version);
        match append::<UpstreamProxy, _>(&self.backend, ctx, key, expected, &events).await {
            Ok(_) => {
                self.forget_secret(loaded.state.as_ref().and_then(secret_of), None)
                    .await;
                Ok(())
            }
            Err(StoreError::VersionConflict { actual, .. }) => Err(AppError::VersionMismatch {
                kind: ResourceKind::UpstreamProxy,
                expected: loaded.version,
                current: actual,
            }),
            Err(e) => Err(e.into()),
        }
    }
}
