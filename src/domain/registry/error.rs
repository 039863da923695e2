//! Why the registry aggregate refuses a command.

use crate::domain::{PackageType, ResourceKind, ResourceName};

/// A refused registry command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A registry with this name exists.
    #[error("registry {0} already exists")]
    AlreadyExists(ResourceName),
    /// Another kind of resource holds the name.
    #[error("the name {0} is already used by {kind}", kind = .1.a_noun())]
    NameTaken(ResourceName, ResourceKind),
    /// No such registry.
    #[error("registry not found")]
    NotFound,
    /// The upstream list names a proxy that does not exist.
    #[error("upstream proxy {0} does not exist")]
    UnknownUpstream(ResourceName),
    /// The upstream list names a proxy of another package type.
    #[error(
        "upstream proxy {key} is a {} proxy; a {} registry can only use {} proxies",
        .actual.as_str(), .expected.as_str(), .expected.as_str()
    )]
    UpstreamTypeMismatch {
        /// The proxy.
        key: ResourceName,
        /// The registry's package type.
        expected: PackageType,
        /// The proxy's package type.
        actual: PackageType,
    },
    /// The upstream list names one proxy twice.
    #[error("upstream proxy {0} is listed more than once")]
    UpstreamListedTwice(ResourceName),
}
