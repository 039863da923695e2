//! What a user can ask of a registry.

use std::collections::BTreeMap;

use crate::domain::{Labels, PackageType, ResourceKind, ResourceName};

/// The upstream proxies that exist, with their package types: the outside facts a registry's
/// upstream list is checked against.
pub type UpstreamCatalog = BTreeMap<ResourceName, PackageType>;

/// A command for the registry aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryCommand {
    /// Create the registry.
    Create(CreateRegistry),
    /// Change some of its settings.
    Update(UpdateRegistry),
    /// Delete it.
    Delete,
}

/// Create a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRegistry {
    /// Its name.
    pub name: ResourceName,
    /// What it holds.
    pub package_type: PackageType,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Labels,
    /// Upstream proxies in order.
    pub upstreams: Vec<ResourceName>,
    /// Whether anyone may pull without credentials.
    pub public: bool,
    /// Whether pushes may replace existing versions.
    pub allow_overwrite: bool,
    /// Fact: the proxies that exist.
    pub known_upstreams: UpstreamCatalog,
    /// Fact: the kind of resource that already holds this name, if another kind does.
    pub name_taken_by: Option<ResourceKind>,
}

/// Change a registry; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateRegistry {
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New labels.
    pub labels: Option<Labels>,
    /// New upstream list, in order.
    pub upstreams: Option<Vec<ResourceName>>,
    /// New visibility.
    pub public: Option<bool>,
    /// New overwrite policy.
    pub allow_overwrite: Option<bool>,
    /// Fact: the proxies that exist.
    pub known_upstreams: UpstreamCatalog,
}
