//! Storing a manifest: the one path for `/v2` pushes and classic Helm chart uploads. The bytes
//! are checked (a manifest Berth understands, whose references the repository holds, and a
//! valid chart when it is one), stored by digest and recorded as a repository event.

use sha2::Digest as _;

use super::RegistryState;
use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use crate::app::{Context, ManifestPush};
use crate::domain::chart;
use crate::domain::manifest::{self, Manifest};
use crate::domain::oci::{Digest, Reference, RepositoryName};
use crate::domain::repository::ManifestRecord;
use crate::projections::repositories;
use crate::storage::BlobStore;

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its digest.
    pub digest: Digest,
    /// What it was read as.
    pub manifest: Manifest,
}

/// Checks, stores and records the manifest `bytes` pushed to `repository` by `reference` (a
/// tag to point at it, or the digest it must have). `content_type` is the media type the
/// client declared.
pub async fn store_manifest(
    state: &RegistryState,
    ctx: &Context,
    repository: &RepositoryName,
    bytes: &[u8],
    content_type: Option<&str>,
    reference: Reference,
) -> RegistryResult<Stored> {
    let digest = Digest::from_sha256(&sha2::Sha256::digest(bytes));
    let tag = match reference {
        Reference::Digest(named) if named != digest => {
            return Err(RegistryError::new(
                ErrorCode::DigestInvalid,
                format!("the manifest hashes to {digest}, not {named}"),
            ));
        }
        Reference::Digest(_) => None,
        Reference::Tag(tag) => Some(tag),
    };
    let parsed = manifest::parse(bytes, content_type)
        .map_err(|e| RegistryError::new(ErrorCode::ManifestInvalid, e.to_string()))?;
    let mut missing = Vec::new();
    for blob in &parsed.blobs {
        if !state.blobs.is_linked(repository, &blob.digest).await? {
            missing.push(blob.digest.clone());
        }
    }
    for child in &parsed.manifests {
        if repositories::manifest(state.app.backend(), repository, &child.digest)
            .await?
            .is_none()
        {
            missing.push(child.digest.clone());
        }
    }
    let chart = match chart::chart_config(&parsed) {
        Some(config) if missing.is_empty() => {
            let bytes = state.blobs.read(config).await?.unwrap_or_default();
            let record = chart::record_from_manifest(&parsed, &bytes)
                .map_err(|e| RegistryError::new(ErrorCode::ManifestInvalid, e.to_string()))?;
            Some(record)
        }
        _ => None,
    };
    if missing.is_empty() {
        state.blobs.put(&digest, bytes).await?;
    }
    let chart_registry = chart.as_ref().map(|_| repository.registry());
    let push = ManifestPush {
        digest: digest.clone(),
        record: ManifestRecord {
            media_type: parsed.media_type.clone(),
            size: bytes.len() as u64,
            subject: parsed.subject.as_ref().map(|s| s.digest.clone()),
            artifact_type: parsed.artifact_type.clone(),
            chart,
        },
        tag: tag.clone(),
        missing,
    };
    state
        .app
        .push_manifest(ctx, repository, push)
        .await
        .map_err(super::app_error)?;
    if let Some(tag) = &tag {
        state
            .cache
            .forget_tag(repository.as_str(), tag.as_str())
            .await;
    }
    if let Some(registry) = chart_registry {
        state.cache.forget_index(registry.as_str()).await;
    }
    Ok(Stored {
        digest,
        manifest: parsed,
    })
}
