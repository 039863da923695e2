//! The repository aggregate: the manifests a repository holds and where its tags point.
//! Pushing a manifest, moving a tag and deleting either are events, so the log answers "what
//! did `app:prod` point to at time T?". Blob bytes are not part of it: storage holds them, and
//! whether a manifest's references are present is a fact the command carries.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use command::RepositoryCommand;
pub use error::RepositoryError;
pub use event::RepositoryEvent;

use super::PackageType;
use super::chart::ChartRecord;
use super::oci::{Digest, Tag};
use super::registry::Registry;

/// The stream category of repositories.
pub const CATEGORY: &str = "repository";

/// What the repository knows of one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The manifest it refers to, if any.
    pub subject: Option<Digest>,
    /// Its artifact type, if any.
    pub artifact_type: Option<String>,
    /// The chart version it holds, when it is a Helm chart.
    pub chart: Option<ChartRecord>,
}

/// What a registry allows pushes to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushPolicy {
    /// Only charts, and artifacts that refer to something (signatures, attestations).
    pub charts_only: bool,
    /// A tag, once set, never moves to another manifest.
    pub immutable_tags: bool,
}

impl PushPolicy {
    /// The policy of `registry`: a Helm registry holds charts, and its chart versions are
    /// immutable unless it allows overwriting.
    pub fn of(registry: &Registry) -> Self {
        let helm = registry.package_type == PackageType::Helm;
        Self {
            charts_only: helm,
            immutable_tags: helm && !registry.allow_overwrite,
        }
    }
}

/// A repository's manifests and tags (or the part of them a command touches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryState {
    /// Manifests by digest.
    pub manifests: BTreeMap<Digest, ManifestRecord>,
    /// Tags and the manifests they point to.
    pub tags: BTreeMap<Tag, Digest>,
}

/// Decides what a command changes, as events; refuses it with the reason otherwise.
pub fn decide(
    state: &RepositoryState,
    command: RepositoryCommand,
) -> Result<Vec<RepositoryEvent>, RepositoryError> {
    match command {
        RepositoryCommand::PushManifest {
            digest,
            record,
            tag,
            missing,
            policy,
        } => {
            if !missing.is_empty() {
                return Err(RepositoryError::ReferencesMissing(missing));
            }
            let record = *record;
            if policy.charts_only && record.chart.is_none() && record.subject.is_none() {
                return Err(RepositoryError::NotAChart);
            }
            if let Some(tag) = &tag
                && policy.immutable_tags
                && state
                    .tags
                    .get(tag)
                    .is_some_and(|current| *current != digest)
            {
                return Err(RepositoryError::TagExists(tag.clone()));
            }
            let mut events = Vec::new();
            if !state.manifests.contains_key(&digest) {
                events.push(RepositoryEvent::ManifestPushed {
                    digest: digest.clone(),
                    media_type: record.media_type,
                    size: record.size,
                    subject: record.subject,
                    artifact_type: record.artifact_type,
                    chart: record.chart,
                });
            }
            if let Some(tag) = tag
                && state.tags.get(&tag) != Some(&digest)
            {
                events.push(RepositoryEvent::TagMoved { tag, digest });
            }
            Ok(events)
        }
        RepositoryCommand::DeleteManifest { digest } => {
            if !state.manifests.contains_key(&digest) {
                return Err(RepositoryError::ManifestUnknown(digest));
            }
            let mut events: Vec<RepositoryEvent> = state
                .tags
                .iter()
                .filter(|(_, target)| **target == digest)
                .map(|(tag, _)| RepositoryEvent::TagDeleted { tag: tag.clone() })
                .collect();
            events.push(RepositoryEvent::ManifestDeleted { digest });
            Ok(events)
        }
        RepositoryCommand::DeleteTag { tag } => {
            if !state.tags.contains_key(&tag) {
                return Err(RepositoryError::TagUnknown(tag));
            }
            Ok(vec![RepositoryEvent::TagDeleted { tag }])
        }
    }
}

/// Applies one event to the state.
pub fn evolve(mut state: RepositoryState, event: &RepositoryEvent) -> RepositoryState {
    match event {
        RepositoryEvent::ManifestPushed {
            digest,
            media_type,
            size,
            subject,
            artifact_type,
            chart,
        } => {
            state.manifests.insert(
                digest.clone(),
                ManifestRecord {
                    media_type: media_type.clone(),
                    size: *size,
                    subject: subject.clone(),
                    artifact_type: artifact_type.clone(),
                    chart: chart.clone(),
                },
            );
        }
        RepositoryEvent::TagMoved { tag, digest } => {
            state.tags.insert(tag.clone(), digest.clone());
        }
        RepositoryEvent::TagDeleted { tag } => {
            state.tags.remove(tag);
        }
        RepositoryEvent::ManifestDeleted { digest } => {
            state.manifests.remove(digest);
            state.tags.retain(|_, target| target != digest);
        }
    }
    state
}
