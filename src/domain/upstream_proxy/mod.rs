//! The upstream-proxy aggregate: a remote Docker registry (Docker Hub or a custom URL) or a
//! remote Helm repository that registries pull through, with its credentials and cache settings.
//! A password is never part of this aggregate: events carry a reference to a stored secret.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use command::{AuthChange, CreateUpstreamProxy, UpdateUpstreamProxy, UpstreamProxyCommand};
pub use error::UpstreamProxyError;
pub use event::UpstreamProxyEvent;

use super::{Labels, PackageType, RemoteUrl, ResourceName};

/// Where a Docker proxy fetches from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DockerSource {
    /// Docker Hub (its endpoint is configured on the server).
    DockerHub,
    /// Any other registry, at the proxy's URL.
    Custom,
}

impl DockerSource {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DockerHub => "DOCKER_HUB",
            Self::Custom => "CUSTOM",
        }
    }
}

/// The remote a proxy fetches from: its source (Docker only) and URL (custom Docker and Helm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// Docker Hub or custom; `None` for Helm.
    pub source: Option<DockerSource>,
    /// The remote URL; `None` for Docker Hub.
    pub url: Option<RemoteUrl>,
}

/// How a proxy authenticates to its remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProxyAuth {
    /// No credentials.
    Anonymous,
    /// A user name and a password kept in the secret store under `secret_id`.
    UsernamePassword {
        /// The user name.
        username: String,
        /// The stored password's id.
        secret_id: Uuid,
    },
}

/// How long cached answers stay fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    /// Seconds a tag's resolution is served without asking the remote again.
    pub tag_ttl_seconds: u32,
}

impl CacheSettings {
    /// The longest tag TTL accepted: 30 days.
    pub const MAX_TAG_TTL_SECONDS: u32 = 30 * 24 * 3600;
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            tag_ttl_seconds: 300,
        }
    }
}

/// An upstream proxy as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamProxy {
    /// Its key, addressed like a registry name.
    pub key: ResourceName,
    /// What it proxies.
    pub package_type: PackageType,
    /// Where it fetches from.
    pub remote: Remote,
    /// How it authenticates.
    pub auth: ProxyAuth,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Labels,
    /// Cache freshness.
    pub cache: CacheSettings,
    /// Whether anyone may pull through it without credentials: what a registry mirror needs,
    /// since Docker daemons and containerd pull from a mirror anonymously.
    #[serde(default)]
    pub public: bool,
}

/// A proxy's state: `None` before creation and after deletion.
pub type UpstreamProxyState = Option<UpstreamProxy>;

/// Decides what a command changes, as events; refuses it with the reason otherwise.
pub fn decide(
    state: &UpstreamProxyState,
    command: UpstreamProxyCommand,
) -> Result<Vec<UpstreamProxyEvent>, UpstreamProxyError> {
    match command {
        UpstreamProxyCommand::Create(create) => {
            if let Some(existing) = state {
                return Err(UpstreamProxyError::AlreadyExists(existing.key.clone()));
            }
            if let Some(kind) = create.name_taken_by {
                return Err(UpstreamProxyError::NameTaken(create.key, kind));
            }
            let remote = check_remote(create.package_type, create.source, create.url)?;
            let auth = match create.auth {
                AuthChange::Anonymous => ProxyAuth::Anonymous,
                AuthChange::UsernamePassword {
                    username,
                    secret_id: Some(secret_id),
                } => ProxyAuth::UsernamePassword {
                    username,
                    secret_id,
                },
                AuthChange::UsernamePassword {
                    secret_id: None, ..
                } => return Err(UpstreamProxyError::PasswordRequired),
            };
            let mut events = vec![UpstreamProxyEvent::Created {
                key: create.key,
                package_type: create.package_type,
                remote,
                auth,
                description: create.description,
                labels: create.labels,
                cache: check_cache(create.cache)?,
            }];
            if create.public {
                events.push(UpstreamProxyEvent::VisibilityChanged { public: true });
            }
            Ok(events)
        }
        UpstreamProxyCommand::Update(update) => {
            let current = state.as_ref().ok_or(UpstreamProxyError::NotFound)?;
            let mut events = Vec::new();
            if update.source.is_some() || update.url.is_some() {
                let source = update.source.or(current.remote.source);
                let url = match (update.url, source) {
                    (Some(url), _) => Some(url),
                    // Moving to Docker Hub drops the old custom URL.
                    (None, Some(DockerSource::DockerHub)) => None,
                    (None, _) => current.remote.url.clone(),
                };
                let remote = check_remote(current.package_type, source, url)?;
                if remote != current.remote {
                    events.push(UpstreamProxyEvent::RemoteChanged { remote });
                }
            }
            if let Some(change) = update.auth {
                let auth = match (change, &current.auth) {
                    (AuthChange::Anonymous, _) => ProxyAuth::Anonymous,
                    (
                        AuthChange::UsernamePassword {
                            username,
                            secret_id: Some(secret_id),
                        },
                        _,
                    ) => ProxyAuth::UsernamePassword {
                        username,
                        secret_id,
                    },
                    (
                        AuthChange::UsernamePassword {
                            username,
                            secret_id: None,
                        },
                        ProxyAuth::UsernamePassword { secret_id, .. },
                    ) => ProxyAuth::UsernamePassword {
                        username,
                        secret_id: *secret_id,
                    },
                    (AuthChange::UsernamePassword { .. }, ProxyAuth::Anonymous) => {
                        return Err(UpstreamProxyError::PasswordRequired);
                    }
                };
                if auth != current.auth {
                    events.push(UpstreamProxyEvent::CredentialsRotated { auth });
                }
            }
            if let Some(description) = update.description.filter(|d| *d != current.description) {
                events.push(UpstreamProxyEvent::Described { description });
            }
            if let Some(labels) = update.labels.filter(|l| *l != current.labels) {
                events.push(UpstreamProxyEvent::Labelled { labels });
            }
            if let Some(cache) = update.cache.filter(|c| *c != current.cache) {
                events.push(UpstreamProxyEvent::CacheConfigured {
                    cache: check_cache(cache)?,
                });
            }
            if let Some(public) = update.public.filter(|p| *p != current.public) {
                events.push(UpstreamProxyEvent::VisibilityChanged { public });
            }
            Ok(events)
        }
        UpstreamProxyCommand::Delete { used_by } => {
            let current = state.as_ref().ok_or(UpstreamProxyError::NotFound)?;
            if !used_by.is_empty() {
                return Err(UpstreamProxyError::InUse {
                    key: current.key.clone(),
                    registries: used_by,
                });
            }
            Ok(vec![UpstreamProxyEvent::Deleted {}])
        }
    }
}

/// Applies one event to the state.
pub fn evolve(state: UpstreamProxyState, event: &UpstreamProxyEvent) -> UpstreamProxyState {
    use UpstreamProxyEvent as E;
    match (state, event) {
        (
            _,
            E::Created {
                key,
                package_type,
                remote,
                auth,
                description,
                labels,
                cache,
            },
        ) => Some(UpstreamProxy {
            key: key.clone(),
            package_type: *package_type,
            remote: remote.clone(),
            auth: auth.clone(),
            description: description.clone(),
            labels: labels.clone(),
            cache: *cache,
            public: false,
        }),
        (Some(p), E::RemoteChanged { remote }) => Some(UpstreamProxy {
            remote: remote.clone(),
            ..p
        }),
        (Some(p), E::CredentialsRotated { auth }) => Some(UpstreamProxy {
            auth: auth.clone(),
            ..p
        }),
        (Some(p), E::Described { description }) => Some(UpstreamProxy {
            description: description.clone(),
            ..p
        }),
        (Some(p), E::Labelled { labels }) => Some(UpstreamProxy {
            labels: labels.clone(),
            ..p
        }),
        (Some(p), E::CacheConfigured { cache }) => Some(UpstreamProxy { cache: *cache, ..p }),
        (Some(p), E::VisibilityChanged { public }) => Some(UpstreamProxy {
            public: *public,
            ..p
        }),
        (_, E::Deleted {}) => None,
        (None, _) => None,
    }
}

/// The secret a proxy's events refer to, if any: the store deletes it with the proxy.
pub fn secret_of(proxy: &UpstreamProxy) -> Option<Uuid> {
    match proxy.auth {
        ProxyAuth::UsernamePassword { secret_id, .. } => Some(secret_id),
        ProxyAuth::Anonymous => None,
    }
}

fn check_remote(
    package_type: PackageType,
    source: Option<DockerSource>,
    url: Option<RemoteUrl>,
) -> Result<Remote, UpstreamProxyError> {
    match (package_type, source, url) {
        (PackageType::Docker, None, _) => Err(UpstreamProxyError::SourceRequired),
        (PackageType::Docker, Some(DockerSource::DockerHub), Some(_)) => {
            Err(UpstreamProxyError::UrlNotForDockerHub)
        }
        (PackageType::Docker, Some(DockerSource::Custom), None) => {
            Err(UpstreamProxyError::UrlRequired(PackageType::Docker))
        }
        (PackageType::Helm, Some(_), _) => Err(UpstreamProxyError::SourceNotForHelm),
        (PackageType::Helm, None, None) => Err(UpstreamProxyError::UrlRequired(PackageType::Helm)),
        (_, source, url) => Ok(Remote { source, url }),
    }
}

fn check_cache(cache: CacheSettings) -> Result<CacheSettings, UpstreamProxyError> {
    if cache.tag_ttl_seconds > CacheSettings::MAX_TAG_TTL_SECONDS {
        return Err(UpstreamProxyError::TagTtlTooLong(cache.tag_ttl_seconds));
    }
    Ok(cache)
}
