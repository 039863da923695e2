//! What happened to an upstream proxy. Stored type names and shapes never change once written;
//! no event ever carries a password, only the id of its stored secret.

use serde::{Deserialize, Serialize};

use super::{CacheSettings, ProxyAuth, Remote};
use crate::domain::{Labels, PackageType, ResourceName};

/// An upstream-proxy event; the serde tag is its stored type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UpstreamProxyEvent {
    /// The proxy was created.
    #[serde(rename = "UpstreamProxyCreated")]
    Created {
        /// Its key.
        key: ResourceName,
        /// What it proxies.
        package_type: PackageType,
        /// Where it fetches from.
        remote: Remote,
        /// How it authenticates.
        auth: ProxyAuth,
        /// What it is for.
        description: Option<String>,
        /// Its labels.
        labels: Labels,
        /// Cache freshness.
        cache: CacheSettings,
    },
    /// Its source or URL changed.
    #[serde(rename = "UpstreamProxyRemoteChanged")]
    RemoteChanged {
        /// The new remote.
        remote: Remote,
    },
    /// Its credentials changed (a new secret reference, never the secret).
    #[serde(rename = "UpstreamProxyCredentialsRotated")]
    CredentialsRotated {
        /// The new credentials.
        auth: ProxyAuth,
    },
    /// Its description changed.
    #[serde(rename = "UpstreamProxyDescribed")]
    Described {
        /// The new description.
        description: Option<String>,
    },
    /// Its labels changed.
    #[serde(rename = "UpstreamProxyLabelled")]
    Labelled {
        /// The new labels.
        labels: Labels,
    },
    /// Its cache settings changed.
    #[serde(rename = "UpstreamProxyCacheConfigured")]
    CacheConfigured {
        /// The new settings.
        cache: CacheSettings,
    },
    /// It became public (anyone may pull through it) or private.
    #[serde(rename = "UpstreamProxyVisibilityChanged")]
    VisibilityChanged {
        /// Whether it is public now.
        public: bool,
    },
    /// It was deleted.
    #[serde(rename = "UpstreamProxyDeleted")]
    Deleted {},
}
