//! The functional core: value types and aggregates, with no I/O of any kind (no tokio, SQL,
//! HTTP or reqwest). Each aggregate has `decide(&State, Command) -> Result<Vec<Event>, Error>`
//! and `evolve(State, &Event) -> State`; facts from outside (which proxies exist, which
//! registries use a proxy) are fetched first and carried in the command.

pub mod chart;
#[cfg(test)]
mod given;
pub mod manifest;
pub mod name;
pub mod oci;
pub mod registry;
pub mod remote_url;
pub mod repository;
pub mod stored;
pub mod text;
pub mod upstream_proxy;

use serde::{Deserialize, Serialize};

pub use name::{NameError, ResourceName};
pub use remote_url::{RemoteUrl, UrlError};
pub use text::{Labels, TextError};

/// What kind of artifacts a registry or proxy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageType {
    /// Container images and other OCI artifacts.
    Docker,
    /// Helm charts.
    Helm,
}

impl PackageType {
    /// The stored and displayed form: `DOCKER` or `HELM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "DOCKER",
            Self::Helm => "HELM",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "DOCKER" => Some(Self::Docker),
            "HELM" => Some(Self::Helm),
            _ => None,
        }
    }
}

/// The two kinds of named resources, which share one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An artifact registry.
    Registry,
    /// An upstream proxy.
    UpstreamProxy,
}

impl ResourceKind {
    /// The event-stream category of this kind.
    pub fn category(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::UpstreamProxy => "upstream_proxy",
        }
    }

    /// How people call it.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::UpstreamProxy => "upstream proxy",
        }
    }

    /// The noun with its indefinite article.
    pub fn a_noun(self) -> &'static str {
        match self {
            Self::Registry => "a registry",
            Self::UpstreamProxy => "an upstream proxy",
        }
    }
}
