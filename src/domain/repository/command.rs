//! What a client can ask of a repository.

use super::{ManifestRecord, PushPolicy};
use crate::domain::oci::{Digest, Tag};

/// A command for the repository aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryCommand {
    /// Store a manifest, and point `tag` at it when given.
    PushManifest {
        /// The manifest's digest.
        digest: Digest,
        /// What it is.
        record: Box<ManifestRecord>,
        /// The tag it was pushed under, if any.
        tag: Option<Tag>,
        /// Fact: referenced blobs and manifests the repository lacks.
        missing: Vec<Digest>,
        /// What the registry allows.
        policy: PushPolicy,
    },
    /// Delete a manifest and every tag pointing at it.
    DeleteManifest {
        /// The manifest.
        digest: Digest,
    },
    /// Delete a tag (the manifest stays).
    DeleteTag {
        /// The tag.
        tag: Tag,
    },
}
