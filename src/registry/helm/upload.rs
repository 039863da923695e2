//! `POST /helm/<registry>/api/charts`: a ChartMuseum-compatible chart upload, the archive as the
//! raw body or as the `chart` field of a multipart form (with an optional `prov` field). The
//! archive is checked, then stored exactly as `helm push` would store it: config, archive and
//! provenance blobs, and a manifest tagged with the version.

use poem::http::StatusCode;
use poem::web::Multipart;
use poem::{Body, FromRequest, Request, RequestBody, Response};
use serde_json::json;
use sha2::Digest as _;
use tokio::io::AsyncReadExt;

use super::HelmResult;
use super::error::HelmError;
use crate::domain::ResourceName;
use crate::domain::chart::PROVENANCE_LAYER_MEDIA_TYPE;
use crate::domain::chart::{self, CHART_LAYER_MEDIA_TYPE, CONFIG_MEDIA_TYPE};
use crate::domain::manifest::OCI_MANIFEST;
use crate::domain::oci::{Digest, Reference, RepositoryName, Tag};
use crate::projections::charts;
use crate::registry::access::Action;
use crate::registry::errcode::ErrorCode;
use crate::registry::{RegistryState, context, push};
use crate::storage::BlobStore;

/// The largest chart archive (or provenance file) accepted.
pub const MAX_CHART_BYTES: usize = 64 * 1024 * 1024;

fn too_large(what: &str) -> HelmError {
    HelmError::new(
        ErrorCode::TooLarge,
        format!("the {what} is larger than {MAX_CHART_BYTES} bytes"),
    )
}

/// The uploaded archive and provenance file.
struct Upload {
    chart: Vec<u8>,
    provenance: Option<Vec<u8>>,
}

async fn read_upload(request: &Request, body: Body) -> HelmResult<Upload> {
    let multipart = request
        .content_type()
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    if !multipart {
        let chart = crate::body::read_limited(body, MAX_CHART_BYTES)
            .await
            .ok_or_else(|| too_large("chart archive"))?;
        return Ok(Upload {
            chart,
            provenance: None,
        });
    }
    let mut form = Multipart::from_request(request, &mut RequestBody::new(body))
        .await
        .map_err(|e| HelmError::bad_request(format!("the multipart form is invalid: {e}")))?;
    let (mut chart, mut provenance) = (None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| HelmError::bad_request(format!("the multipart form is invalid: {e}")))?
    {
        let slot = match field.name() {
            Some("chart") => &mut chart,
            Some("prov") => &mut provenance,
            _ => continue,
        };
        let mut bytes = Vec::new();
        field
            .into_async_read()
            .take(MAX_CHART_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| HelmError::bad_request(format!("reading the form failed: {e}")))?;
        if bytes.len() > MAX_CHART_BYTES {
            return Err(too_large("form field"));
        }
        *slot = Some(bytes);
    }
    Ok(Upload {
        chart: chart.ok_or_else(|| {
            HelmError::bad_request("the multipart form has no \"chart\" field with the archive")
        })?,
        provenance,
    })
}

/// Stores `bytes` as a blob linked into `repository`, and describes it.
async fn put_blob(
    state: &RegistryState,
    repository: &RepositoryName,
    media_type: &str,
    bytes: &[u8],
) -> HelmResult<serde_json::Value> {
    let digest = Digest::from_sha256(&sha2::Sha256::digest(bytes));
    state.blobs.put(&digest, bytes).await?;
    state.blobs.link(repository, &digest).await?;
    Ok(json!({ "mediaType": media_type, "digest": digest.as_str(), "size": bytes.len() }))
}

/// `POST /api/charts`.
pub async fn upload(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
    body: Body,
) -> HelmResult<Response> {
    // Refuse callers who may not push anywhere here before reading what they send.
    super::admit(state, request, registry, None, Action::Push).await?;
    let upload = read_upload(request, body).await?;
    let metadata =
        chart::parse_archive(&upload.chart).map_err(|e| HelmError::bad_request(e.to_string()))?;
    let (namespace, principal) =
        super::admit(state, request, registry, Some(&metadata.name), Action::Push).await?;
    // Pushes are refused for proxies when admitted.
    let allow_overwrite = match &namespace {
        super::HelmNamespace::Registry(stored) => stored.doc.allow_overwrite,
        super::HelmNamespace::Proxy(_) => false,
    };
    let repository =
        RepositoryName::parse(&format!("{registry}/{}", metadata.name)).map_err(|e| {
            HelmError::bad_request(format!(
                "chart name {:?} cannot name a repository: {e}",
                metadata.name
            ))
        })?;
    let tag = Tag::parse(&chart::oci_tag(&metadata.version)).map_err(|e| {
        HelmError::bad_request(format!(
            "chart version {:?} cannot be a tag: {e}",
            metadata.version
        ))
    })?;
    let exists = || {
        HelmError::new(
            ErrorCode::TagImmutable,
            format!(
                "chart {} version {} already exists in registry {registry}, which does not allow overwriting; delete it first",
                metadata.name, metadata.version
            ),
        )
    };
    if !allow_overwrite
        && charts::chart(
            state.app.backend(),
            registry.as_str(),
            &metadata.name,
            &metadata.version,
        )
        .await?
        .is_some()
    {
        return Err(exists());
    }
    let config_bytes = serde_json::to_vec(&metadata.fields).unwrap_or_default();
    let config = put_blob(state, &repository, CONFIG_MEDIA_TYPE, &config_bytes).await?;
    let mut layers =
        vec![put_blob(state, &repository, CHART_LAYER_MEDIA_TYPE, &upload.chart).await?];
    if let Some(provenance) = &upload.provenance {
        layers.push(put_blob(state, &repository, PROVENANCE_LAYER_MEDIA_TYPE, provenance).await?);
    }
    let manifest = chart::oci_manifest(&metadata, config, layers);
    let ctx = context(request, principal.as_ref());
    push::store_manifest(
        state,
        &ctx,
        &repository,
        &manifest,
        Some(OCI_MANIFEST),
        Reference::Tag(tag),
    )
    .await
    .map_err(|e| match e.code() {
        ErrorCode::TagImmutable => exists(),
        _ => e.into(),
    })?;
    Ok(Response::builder()
        .status(StatusCode::CREATED)
        .content_type("application/json")
        .body(json!({ "saved": true }).to_string()))
}
