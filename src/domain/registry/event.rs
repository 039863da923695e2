//! What happened to a registry. Stored type names and their shapes never change once written.

use serde::{Deserialize, Serialize};

use crate::domain::{Labels, PackageType, ResourceName};

/// A registry event; the serde tag is its stored type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RegistryEvent {
    /// The registry was created.
    #[serde(rename = "RegistryCreated")]
    Created {
        /// Its name.
        name: ResourceName,
        /// What it holds.
        package_type: PackageType,
        /// What it is for.
        description: Option<String>,
        /// Its labels.
        labels: Labels,
        /// Its upstream proxies, in order.
        upstreams: Vec<ResourceName>,
    },
    /// Its description changed.
    #[serde(rename = "RegistryDescribed")]
    Described {
        /// The new description.
        description: Option<String>,
    },
    /// Its labels changed.
    #[serde(rename = "RegistryLabelled")]
    Labelled {
        /// The new labels.
        labels: Labels,
    },
    /// Its upstream list (members or order) changed.
    #[serde(rename = "RegistryUpstreamsSet")]
    UpstreamsSet {
        /// The new list, in order.
        upstreams: Vec<ResourceName>,
    },
    /// It became public (anyone may pull) or private.
    #[serde(rename = "RegistryVisibilityChanged")]
    VisibilityChanged {
        /// Whether it is public now.
        public: bool,
    },
    /// Whether pushes may replace existing versions changed.
    #[serde(rename = "RegistryOverwritePolicySet")]
    OverwritePolicySet {
        /// Whether they may now.
        allow_overwrite: bool,
    },
    /// It was deleted.
    #[serde(rename = "RegistryDeleted")]
    Deleted {},
}
