//! Why the repository aggregate refuses a command.

use crate::domain::oci::{Digest, Tag};

/// A refused repository command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// The manifest references content the repository does not have.
    #[error("the manifest references content this repository does not have: {}", .0.iter().map(Digest::as_str).collect::<Vec<_>>().join(", "))]
    ReferencesMissing(Vec<Digest>),
    /// The tag exists, points elsewhere, and may not move.
    #[error("tag {0} already exists and this registry does not allow overwriting it")]
    TagExists(Tag),
    /// A Helm registry was sent something that is not a chart.
    #[error(
        "a Helm registry holds only Helm charts (manifests whose config is {}) and artifacts that refer to them",
        crate::domain::chart::CONFIG_MEDIA_TYPE
    )]
    NotAChart,
    /// No such manifest.
    #[error("manifest {0} is not in this repository")]
    ManifestUnknown(Digest),
    /// No such tag.
    #[error("tag {0} is not in this repository")]
    TagUnknown(Tag),
}
