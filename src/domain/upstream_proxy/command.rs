//! What a user can ask of an upstream proxy.

use uuid::Uuid;

use super::{CacheSettings, DockerSource};
use crate::domain::{Labels, PackageType, RemoteUrl, ResourceKind, ResourceName};

/// A command for the upstream-proxy aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamProxyCommand {
    /// Create the proxy.
    Create(CreateUpstreamProxy),
    /// Change some of its settings.
    Update(UpdateUpstreamProxy),
    /// Delete it.
    Delete {
        /// Fact: the registries that list this proxy as an upstream.
        used_by: Vec<ResourceName>,
    },
}

/// Credentials as a command gives them; the password is already stored as a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthChange {
    /// No credentials.
    Anonymous,
    /// A user name and, when a new password was given, the id it is stored under.
    UsernamePassword {
        /// The user name.
        username: String,
        /// The new password's secret id; `None` keeps the current password.
        secret_id: Option<Uuid>,
    },
}

/// Create an upstream proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateUpstreamProxy {
    /// Its key.
    pub key: ResourceName,
    /// What it proxies.
    pub package_type: PackageType,
    /// Docker Hub or custom (Docker only).
    pub source: Option<DockerSource>,
    /// The remote URL (custom Docker and Helm).
    pub url: Option<RemoteUrl>,
    /// Credentials.
    pub auth: AuthChange,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Labels,
    /// Cache freshness.
    pub cache: CacheSettings,
    /// Whether anyone may pull through it without credentials.
    pub public: bool,
    /// Fact: the kind of resource that already holds this name, if another kind does.
    pub name_taken_by: Option<ResourceKind>,
}

/// Change a proxy; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateUpstreamProxy {
    /// New source (Docker only).
    pub source: Option<DockerSource>,
    /// New URL.
    pub url: Option<RemoteUrl>,
    /// New credentials.
    pub auth: Option<AuthChange>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New labels.
    pub labels: Option<Labels>,
    /// New cache settings.
    pub cache: Option<CacheSettings>,
    /// Public (anyone may pull through it) or private.
    pub public: Option<bool>,
}
