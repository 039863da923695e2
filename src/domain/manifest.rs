//! Reading image manifests and indexes (OCI and Docker v2 schema 2) just enough to check them:
//! their media type, the content they reference, their subject and artifact type. The bytes
//! themselves are kept exactly as pushed.

use serde::Deserialize;
use serde_json::Value;

use super::oci::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the expected shape.
    #[error("the manifest is not valid: {0}")]
    Malformed(String),
    /// A media type Berth does not store.
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    /// The Content-Type and the body's mediaType disagree.
    #[error("Content-Type {header:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch {
        /// The Content-Type header.
        header: String,
        /// The body's `mediaType`.
        body: String,
    },
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type, if any.
    pub artifact_type: Option<String>,
}

/// What Berth needs to know of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Its media type.
    pub media_type: String,
    /// Blobs it references (config and layers); empty for an index.
    pub blobs: Vec<Descriptor>,
    /// Manifests it references (an index's children); empty for an image manifest.
    pub manifests: Vec<Descriptor>,
    /// The manifest it refers to (OCI 1.1 `subject`).
    pub subject: Option<Descriptor>,
    /// Its artifact type: `artifactType`, else the config's media type for an image manifest.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: Value,
}

impl Manifest {
    /// Whether this is an index (or manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_str(), OCI_INDEX | DOCKER_LIST)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    artifact_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: Value,
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, ManifestError> {
    let digest =
        Digest::parse(&raw.digest).map_err(|e| ManifestError::Malformed(format!("{what}: {e}")))?;
    let size = u64::try_from(raw.size)
        .map_err(|_| ManifestError::Malformed(format!("{what}: size must not be negative")))?;
    Ok(Descriptor {
        media_type: raw.media_type.unwrap_or_default(),
        digest,
        size,
        artifact_type: raw.artifact_type,
    })
}

/// Parses a manifest pushed with `content_type`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    if raw.schema_version != Some(2) {
        return Err(ManifestError::Malformed("schemaVersion must be 2".into()));
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
    let media_type = match (&header, &raw.media_type) {
        (Some(header), Some(body)) if header != body => {
            return Err(ManifestError::MediaTypeMismatch {
                header: header.clone(),
                body: body.clone(),
            });
        }
        (_, Some(body)) => body.clone(),
        (Some(header), None) => header.clone(),
        // An OCI manifest may omit mediaType: tell image from index by its fields.
        (None, None) if raw.config.is_some() => OCI_MANIFEST.to_owned(),
        (None, None) => OCI_INDEX.to_owned(),
    };
    let is_index = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        OCI_INDEX | DOCKER_LIST => true,
        other => return Err(ManifestError::UnsupportedMediaType(other.to_owned())),
    };
    let mut blobs = Vec::new();
    let mut config_type = None;
    if !is_index {
        let config = raw
            .config
            .ok_or_else(|| ManifestError::Malformed("an image manifest needs a config".into()))?;
        let config = descriptor(config, "config")?;
        config_type = Some(config.media_type.clone());
        blobs.push(config);
        for (i, layer) in raw.layers.into_iter().enumerate() {
            blobs.push(descriptor(layer, &format!("layers[{i}]"))?);
        }
    }
    let manifests = raw
        .manifests
        .into_iter()
        .enumerate()
        .map(|(i, m)| descriptor(m, &format!("manifests[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest {
        artifact_type: raw.artifact_type.or(config_type),
        media_type,
        blobs,
        manifests,
        subject: raw.subject.map(|s| descriptor(s, "subject")).transpose()?,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_image_manifest_names_its_config_layers_and_subject() {
        let body = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest('a'), "size": 2},
            "layers": [{"mediaType": "application/x-tar", "digest": digest('b'), "size": 10}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest('c'), "size": 100},
            "annotations": {"org.example": "x"}
        });
        let manifest = parse(body.to_string().as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert!(!manifest.is_index());
        assert_eq!(manifest.blobs.len(), 2);
        assert_eq!(manifest.subject.unwrap().digest.as_str(), digest('c'));
        assert_eq!(
            manifest.artifact_type.as_deref(),
            Some("application/x-sbom")
        );
    }

    #[test]
    fn an_index_names_its_children_and_mismatches_are_refused() {
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": digest('d'), "size": 5}]
        });
        let manifest = parse(index.to_string().as_bytes(), None).unwrap();
        assert!(manifest.is_index());
        assert_eq!(manifest.manifests.len(), 1);
        assert!(matches!(
            parse(index.to_string().as_bytes(), Some(OCI_INDEX)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse(b"{not json", None),
            Err(ManifestError::Malformed(_))
        ));
        let v1 = serde_json::json!({"schemaVersion": 1, "name": "x"});
        assert!(parse(v1.to_string().as_bytes(), None).is_err());
        let odd = serde_json::json!({"schemaVersion": 2, "mediaType": "text/plain", "config": {"digest": digest('a'), "size": 1}});
        assert!(matches!(
            parse(odd.to_string().as_bytes(), None),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        let bad_digest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1}, "layers": []});
        assert!(parse(bad_digest.to_string().as_bytes(), None).is_err());
    }
}
