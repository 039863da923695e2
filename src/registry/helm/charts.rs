//! Chart archives and provenance files (`/helm/<registry>/charts/<name>-<version>.tgz[.prov]`)
//! and the ChartMuseum API for listing and deleting versions (`/helm/<registry>/api/charts`).

use poem::http::Method;
use poem::{Body, Request, Response};
use serde_json::json;

use super::HelmNamespace;
use super::HelmResult;
use super::error::HelmError;
use super::index::{entry, grouped};
use crate::domain::ResourceName;
use crate::domain::chart::split_file_name;
use crate::domain::oci::RepositoryName;
use crate::projections::charts::{self, ChartRow, Fields};
use crate::registry::access::Action;
use crate::registry::{RegistryState, context, upstream_error};
use crate::storage::BlobStore;

/// Bytes per read when streaming an archive.
const STREAM_CHUNK: usize = 256 * 1024;

/// The listed version a file name names, trying each way it splits into name and version.
async fn by_file(
    state: &RegistryState,
    registry: &ResourceName,
    stem: &str,
) -> HelmResult<Option<ChartRow>> {
    for (name, version) in split_file_name(stem) {
        if let Some(row) =
            charts::chart(state.app.backend(), registry.as_str(), &name, &version).await?
        {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// The version a file name names, from the namespace's Helm upstream proxies in order: what a
/// proxy fetched before, else fetched now.
async fn through(
    state: &RegistryState,
    namespace: &HelmNamespace,
    stem: &str,
) -> HelmResult<Option<ChartRow>> {
    let upstreams = namespace.upstreams(state).await?;
    for upstream in &upstreams {
        if let Some(row) = by_file(state, &upstream.key, stem).await? {
            state.proxy.count_hit(upstream.key.as_str());
            return Ok(Some(row));
        }
    }
    let mut failure = None;
    for upstream in &upstreams {
        for (name, version) in split_file_name(stem) {
            match state.proxy.helm_chart(upstream, &name, &version).await {
                Ok(true) => {
                    let key = upstream.key.as_str();
                    return Ok(charts::chart(state.app.backend(), key, &name, &version).await?);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(proxy = %upstream.key, error = %e, "a Helm upstream failed");
                    failure = Some(e);
                }
            }
        }
    }
    match failure {
        Some(e) => Err(upstream_error(e).into()),
        None => Ok(None),
    }
}

/// `GET` or `HEAD` of `charts/<name>-<version>.tgz` or `.tgz.prov`.
pub async fn download(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
    file: &str,
) -> HelmResult<Response> {
    let (namespace, _) = super::admit(state, request, registry, None, Action::Pull).await?;
    let missing = || HelmError::not_found(format!("{file} is not in registry {registry}"));
    let (stem, provenance) = if let Some(stem) = file.strip_suffix(".tgz.prov") {
        (stem, true)
    } else if let Some(stem) = file.strip_suffix(".tgz") {
        (stem, false)
    } else {
        return Err(missing());
    };
    let local = match &namespace {
        HelmNamespace::Registry(_) => by_file(state, registry, stem).await?,
        HelmNamespace::Proxy(_) => None,
    };
    let row = match local {
        Some(row) => row,
        None => through(state, &namespace, stem)
            .await?
            .ok_or_else(missing)?,
    };
    let (digest, content_type) = if provenance {
        (
            row.chart.provenance.ok_or_else(missing)?,
            "application/pgp-signature",
        )
    } else {
        (row.chart.archive, "application/gzip")
    };
    let size = state.blobs.stat(&digest).await?.ok_or_else(missing)?;
    let builder = Response::builder()
        .content_type(content_type)
        .header("Content-Length", size.to_string())
        .header("ETag", format!("\"{digest}\""));
    if request.method() == Method::HEAD {
        return Ok(builder.finish());
    }
    let blob = state
        .blobs
        .open(&digest, 0, None)
        .await?
        .ok_or_else(missing)?;
    let chunks = tokio_util::io::ReaderStream::with_capacity(blob.reader, STREAM_CHUNK);
    Ok(builder.body(Body::from_bytes_stream(chunks)))
}

fn json_response(request: &Request, value: serde_json::Value) -> Response {
    let body = value.to_string();
    let builder = Response::builder()
        .content_type("application/json")
        .header("Content-Length", body.len().to_string());
    if request.method() == Method::HEAD {
        return builder.finish();
    }
    builder.body(body)
}

/// `GET /api/charts` (every chart, by name) or `GET /api/charts/<name>` (its versions).
pub async fn list(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
    name: Option<&str>,
) -> HelmResult<Response> {
    super::admit(state, request, registry, name, Action::Pull).await?;
    let rows = charts::charts(state.app.backend(), registry.as_str(), name, Fields::Load).await?;
    let groups = grouped(rows);
    let listing = |versions: &Vec<ChartRow>| json!(versions.iter().map(entry).collect::<Vec<_>>());
    Ok(match name {
        None => json_response(
            request,
            json!(
                groups
                    .iter()
                    .map(|(name, versions)| (name.clone(), listing(versions)))
                    .collect::<serde_json::Map<_, _>>()
            ),
        ),
        Some(name) => {
            let versions = groups
                .get(name)
                .ok_or_else(|| HelmError::no_chart(registry, name, None))?;
            json_response(request, listing(versions))
        }
    })
}

/// Version `version` of chart `name`, or 404.
async fn listed_version(
    state: &RegistryState,
    registry: &ResourceName,
    name: &str,
    version: &str,
) -> HelmResult<ChartRow> {
    charts::chart(state.app.backend(), registry.as_str(), name, version)
        .await?
        .ok_or_else(|| HelmError::no_chart(registry, name, Some(version)))
}

/// `GET /api/charts/<name>/<version>`.
pub async fn version(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
    name: &str,
    version: &str,
) -> HelmResult<Response> {
    super::admit(state, request, registry, Some(name), Action::Pull).await?;
    let row = listed_version(state, registry, name, version).await?;
    Ok(json_response(request, entry(&row)))
}

/// `DELETE /api/charts/<name>/<version>`: deletes the manifest holding the version (and so its
/// tag), as `helm`'s OCI delete would.
pub async fn delete(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
    name: &str,
    version: &str,
) -> HelmResult<Response> {
    let (_, principal) = super::admit(state, request, registry, Some(name), Action::Delete).await?;
    let row = listed_version(state, registry, name, version).await?;
    let repository = RepositoryName::parse(&row.repository)
        .map_err(|e| HelmError::bad_request(e.to_string()))?;
    let ctx = context(request, principal.as_ref());
    state
        .app
        .delete_manifest(&ctx, &repository, &row.manifest)
        .await?;
    state
        .cache
        .forget_manifest(repository.as_str(), &row.manifest)
        .await;
    state
        .cache
        .forget_tag(repository.as_str(), &row.chart.tag())
        .await;
    state.cache.forget_index(registry.as_str()).await;
    Ok(json_response(request, json!({ "deleted": true })))
}
