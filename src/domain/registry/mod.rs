//! The registry aggregate: an artifact registry of one package type, with an ordered list of
//! upstream proxies that serve what it does not hold.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use command::{CreateRegistry, RegistryCommand, UpdateRegistry, UpstreamCatalog};
pub use error::RegistryError;
pub use event::RegistryEvent;

use super::{Labels, PackageType, ResourceName};

/// A registry as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Its name, the first path component of every image in it.
    pub name: ResourceName,
    /// What it holds.
    pub package_type: PackageType,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Labels,
    /// Upstream proxy keys, tried in this order on a local miss.
    pub upstreams: Vec<ResourceName>,
    /// Whether anyone may pull without credentials.
    #[serde(default)]
    pub public: bool,
    /// Whether a pushed artifact may replace an existing version (Helm chart versions are
    /// immutable otherwise).
    #[serde(default)]
    pub allow_overwrite: bool,
}

/// A registry's state: `None` before creation and after deletion.
pub type RegistryState = Option<Registry>;

/// Decides what a command changes, as events; refuses it with the reason otherwise.
pub fn decide(
    state: &RegistryState,
    command: RegistryCommand,
) -> Result<Vec<RegistryEvent>, RegistryError> {
    match command {
        RegistryCommand::Create(create) => {
            if let Some(existing) = state {
                return Err(RegistryError::AlreadyExists(existing.name.clone()));
            }
            if let Some(kind) = create.name_taken_by {
                return Err(RegistryError::NameTaken(create.name, kind));
            }
            check_upstreams(
                create.package_type,
                &create.upstreams,
                &create.known_upstreams,
            )?;
            let mut events = vec![RegistryEvent::Created {
                name: create.name,
                package_type: create.package_type,
                description: create.description,
                labels: create.labels,
                upstreams: create.upstreams,
            }];
            if create.public {
                events.push(RegistryEvent::VisibilityChanged { public: true });
            }
            if create.allow_overwrite {
                events.push(RegistryEvent::OverwritePolicySet {
                    allow_overwrite: true,
                });
            }
            Ok(events)
        }
        RegistryCommand::Update(update) => {
            let current = state.as_ref().ok_or(RegistryError::NotFound)?;
            let mut events = Vec::new();
            if let Some(description) = update.description.filter(|d| *d != current.description) {
                events.push(RegistryEvent::Described { description });
            }
            if let Some(labels) = update.labels.filter(|l| *l != current.labels) {
                events.push(RegistryEvent::Labelled { labels });
            }
            if let Some(upstreams) = update.upstreams.filter(|u| *u != current.upstreams) {
                check_upstreams(current.package_type, &upstreams, &update.known_upstreams)?;
                events.push(RegistryEvent::UpstreamsSet { upstreams });
            }
            if let Some(public) = update.public.filter(|p| *p != current.public) {
                events.push(RegistryEvent::VisibilityChanged { public });
            }
            if let Some(allow_overwrite) = update
                .allow_overwrite
                .filter(|a| *a != current.allow_overwrite)
            {
                events.push(RegistryEvent::OverwritePolicySet { allow_overwrite });
            }
            Ok(events)
        }
        RegistryCommand::Delete => {
            state.as_ref().ok_or(RegistryError::NotFound)?;
            Ok(vec![RegistryEvent::Deleted {}])
        }
    }
}

/// Applies one event to the state.
pub fn evolve(state: RegistryState, event: &RegistryEvent) -> RegistryState {
    match (state, event) {
        (
            _,
            RegistryEvent::Created {
                name,
                package_type,
                description,
                labels,
                upstreams,
            },
        ) => Some(Registry {
            name: name.clone(),
            package_type: *package_type,
            description: description.clone(),
            labels: labels.clone(),
            upstreams: upstreams.clone(),
            public: false,
            allow_overwrite: false,
        }),
        (Some(registry), RegistryEvent::Described { description }) => Some(Registry {
            description: description.clone(),
            ..registry
        }),
        (Some(registry), RegistryEvent::Labelled { labels }) => Some(Registry {
            labels: labels.clone(),
            ..registry
        }),
        (Some(registry), RegistryEvent::UpstreamsSet { upstreams }) => Some(Registry {
            upstreams: upstreams.clone(),
            ..registry
        }),
        (Some(registry), RegistryEvent::VisibilityChanged { public }) => Some(Registry {
            public: *public,
            ..registry
        }),
        (Some(registry), RegistryEvent::OverwritePolicySet { allow_overwrite }) => Some(Registry {
            allow_overwrite: *allow_overwrite,
            ..registry
        }),
        (_, RegistryEvent::Deleted {}) => None,
        (None, _) => None,
    }
}

fn check_upstreams(
    package_type: PackageType,
    upstreams: &[ResourceName],
    known: &UpstreamCatalog,
) -> Result<(), RegistryError> {
    for (i, key) in upstreams.iter().enumerate() {
        if upstreams[..i].contains(key) {
            return Err(RegistryError::UpstreamListedTwice(key.clone()));
        }
        match known.get(key) {
            None => return Err(RegistryError::UnknownUpstream(key.clone())),
            Some(actual) if *actual != package_type => {
                return Err(RegistryError::UpstreamTypeMismatch {
                    key: key.clone(),
                    expected: package_type,
                    actual: *actual,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}
