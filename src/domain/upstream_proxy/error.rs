//! Why the upstream-proxy aggregate refuses a command.

use crate::domain::{PackageType, ResourceKind, ResourceName};

/// A refused upstream-proxy command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamProxyError {
    /// A proxy with this key exists.
    #[error("upstream proxy {0} already exists")]
    AlreadyExists(ResourceName),
    /// Another kind of resource holds the key.
    #[error("the name {0} is already used by {kind}", kind = .1.a_noun())]
    NameTaken(ResourceName, ResourceKind),
    /// No such proxy.
    #[error("upstream proxy not found")]
    NotFound,
    /// A Docker proxy without a source.
    #[error("a DOCKER upstream proxy needs a source: DOCKER_HUB or CUSTOM")]
    SourceRequired,
    /// A Helm proxy with a Docker source.
    #[error("source applies to DOCKER upstream proxies only; a HELM proxy takes just a url")]
    SourceNotForHelm,
    /// A URL where the remote is Docker Hub.
    #[error("a DOCKER_HUB source takes no url; use source CUSTOM for another registry")]
    UrlNotForDockerHub,
    /// No URL where one is needed.
    #[error("{} upstream proxy needs a url", if *.0 == PackageType::Helm { "a HELM" } else { "a CUSTOM DOCKER" })]
    UrlRequired(PackageType),
    /// USERNAME_PASSWORD without a password, and none kept from before.
    #[error("a password is required for USERNAME_PASSWORD authentication")]
    PasswordRequired,
    /// A tag TTL over the limit.
    #[error("tag_ttl_seconds must be at most 2592000 (30 days), not {0}")]
    TagTtlTooLong(u32),
    /// Registries still list the proxy.
    #[error(
        "upstream proxy {key} is used by registries {}; remove it from them first",
        .registries.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    )]
    InUse {
        /// The proxy.
        key: ResourceName,
        /// The registries that list it.
        registries: Vec<ResourceName>,
    },
}
