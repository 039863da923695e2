//! What happened in a repository. Stored type names and shapes never change once written.

use serde::{Deserialize, Serialize};

use crate::domain::chart::ChartRecord;
use crate::domain::oci::{Digest, Tag};

/// A repository event; the serde tag is its stored type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RepositoryEvent {
    /// A manifest was stored.
    #[serde(rename = "ManifestPushed")]
    ManifestPushed {
        /// Its digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// Its size.
        size: u64,
        /// The manifest it refers to.
        subject: Option<Digest>,
        /// Its artifact type.
        artifact_type: Option<String>,
        /// The chart version it holds, when it is a Helm chart (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chart: Option<ChartRecord>,
    },
    /// A tag now points to a manifest.
    #[serde(rename = "TagMoved")]
    TagMoved {
        /// The tag.
        tag: Tag,
        /// The manifest.
        digest: Digest,
    },
    /// A tag was deleted.
    #[serde(rename = "TagDeleted")]
    TagDeleted {
        /// The tag.
        tag: Tag,
    },
    /// A manifest was deleted.
    #[serde(rename = "ManifestDeleted")]
    ManifestDeleted {
        /// Its digest.
        digest: Digest,
    },
}
