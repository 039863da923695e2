//! Manifests, tags, the catalog and referrers: `/v2/<name>/manifests/<reference>`,
//! `/v2/<name>/tags/list`, `/v2/_catalog` and `/v2/<name>/referrers/<digest>`. Manifests are
//! served byte for byte as pushed; pushes and deletions are recorded as repository events.

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::{Body, Request, Response};
use serde_json::json;

use super::access::{self, Action};
use super::cache::CachedManifest;
use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use super::{Namespace, RegistryState, app_error, context, push, upstream_error};
use crate::auth::Principal;
use crate::domain::manifest::{MAX_MANIFEST_BYTES, OCI_INDEX};
use crate::domain::oci::{Digest, Reference, RepositoryName};
use crate::projections::repositories::{self, ManifestRow};
use crate::storage::BlobStore;

/// The most tags or repositories one page lists.
const MAX_PAGE: u64 = 1000;

/// The reference of a manifest request. One that is neither a tag nor a digest names nothing
/// that can exist, so reading or deleting it is `MANIFEST_UNKNOWN` (404), as in Distribution,
/// whose routes never match it; pushing to it is refused as `TAG_INVALID`, or `DIGEST_INVALID`
/// when it has the `algorithm:hex` shape of a digest (both 400).
fn reference(raw: &str, method: &Method) -> RegistryResult<Reference> {
    Reference::parse(raw).map_err(|e| {
        let code = match *method {
            Method::PUT if raw.contains(':') => ErrorCode::DigestInvalid,
            Method::PUT => ErrorCode::TagInvalid,
            _ => ErrorCode::ManifestUnknown,
        };
        RegistryError::new(code, e.to_string())
    })
}

fn query(request: &Request, key: &str) -> Option<String> {
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn page_size(request: &Request) -> RegistryResult<u64> {
    match query(request, "n") {
        None => Ok(MAX_PAGE),
        Some(n) => n.parse::<u64>().map(|n| n.min(MAX_PAGE)).map_err(|_| {
            RegistryError::new(
                ErrorCode::PaginationNumberInvalid,
                format!("n={n:?} is not a number of results"),
            )
        }),
    }
}

/// A manifest by tag or digest: from the cache, else from the read model and storage (and
/// then cached).
async fn cached(
    state: &RegistryState,
    repository: &RepositoryName,
    reference: &Reference,
) -> RegistryResult<(Digest, Arc<CachedManifest>)> {
    let unknown = || {
        RegistryError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is not in {repository}"),
        )
    };
    let digest = match reference {
        Reference::Digest(digest) => Some(digest.clone()),
        Reference::Tag(tag) => state.cache.tag(repository, tag).await,
    };
    if let Some(digest) = &digest
        && let Some(manifest) = state.cache.manifest(repository, digest).await
    {
        return Ok((digest.clone(), manifest));
    }
    let ticket = state.cache.ticket();
    let backend = state.app.backend();
    let row: ManifestRow = match reference {
        Reference::Tag(tag) => repositories::resolve_tag(backend, repository, tag).await?,
        Reference::Digest(digest) => repositories::manifest(backend, repository, digest).await?,
    }
    .ok_or_else(unknown)?;
    let bytes = state.blobs.read(&row.digest).await?.ok_or_else(unknown)?;
    let manifest = Arc::new(CachedManifest {
        media_type: row.record.media_type,
        bytes: bytes.into(),
    });
    if let Some(ticket) = ticket {
        state
            .cache
            .put_manifest(repository, &row.digest, manifest.clone(), ticket)
            .await;
        if let Reference::Tag(tag) = reference {
            state
                .cache
                .put_tag(repository, tag, &row.digest, ticket)
                .await;
        }
    }
    Ok((row.digest, manifest))
}

/// `GET`, `HEAD`, `PUT` or `DELETE` of a manifest.
pub async fn manifest(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    raw_reference: &str,
    body: Body,
) -> RegistryResult<Response> {
    let method = request.method().clone();
    let actions: &[Action] = match method {
        Method::PUT => &[Action::Pull, Action::Push],
        Method::DELETE => &[Action::Delete],
        _ => &[Action::Pull],
    };
    let admitted = state.admit(request, repository, actions).await?;
    let principal = admitted.principal;
    let reference = reference(raw_reference, &method)?;
    match method {
        Method::PUT => {
            put(
                state,
                request,
                repository,
                reference,
                principal.as_ref(),
                body,
            )
            .await
        }
        Method::DELETE => {
            let ctx = context(request, principal.as_ref());
            match &reference {
                Reference::Digest(digest) => {
                    (state.app.delete_manifest(&ctx, repository, digest).await)
                        .map_err(app_error)?;
                    state
                        .cache
                        .forget_manifest(repository.as_str(), digest)
                        .await;
                }
                Reference::Tag(tag) => {
                    (state.app.delete_tag(&ctx, repository, tag).await).map_err(app_error)?;
                    state
                        .cache
                        .forget_tag(repository.as_str(), tag.as_str())
                        .await;
                }
            }
            // A chart's tag or manifest going changes its registry's Helm index.
            state
                .cache
                .forget_index(repository.registry().as_str())
                .await;
            Ok(Response::builder()
                .status(StatusCode::ACCEPTED)
                .header("Content-Length", "0")
                .finish())
        }
        _ => {
            let local = match &admitted.namespace {
                Namespace::Registry(_) => match cached(state, repository, &reference).await {
                    Ok((digest, manifest)) => Some((digest, manifest, None)),
                    Err(e) if e.code() == ErrorCode::ManifestUnknown => None,
                    Err(e) => return Err(e),
                },
                Namespace::Proxy { .. } => None,
            };
            let (digest, manifest, warning) = match local {
                Some(found) => found,
                None => through(state, request, repository, &admitted.namespace, &reference)
                    .await?
                    .ok_or_else(|| {
                        RegistryError::new(
                            ErrorCode::ManifestUnknown,
                            format!("manifest {reference} is not in {repository}"),
                        )
                    })?,
            };
            let mut builder = Response::builder()
                .header("Content-Type", manifest.media_type.as_str())
                .header("Docker-Content-Digest", digest.as_str())
                .header("ETag", format!("\"{digest}\""))
                .header("Content-Length", manifest.bytes.len().to_string());
            if let Some(warning) = warning {
                builder = builder.header("Warning", warning);
            }
            if method == Method::HEAD {
                return Ok(builder.finish());
            }
            Ok(builder.body(manifest.bytes.clone()))
        }
    }
}

/// A manifest pulled through the namespace's upstream proxies, in order: the first that has
/// it wins. `None` when none has it; an error naming the failure when one failed and none had
/// it.
async fn through(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    namespace: &Namespace,
    reference: &Reference,
) -> RegistryResult<Option<(Digest, Arc<CachedManifest>, Option<String>)>> {
    // Clients may send several Accept headers (one per media type): forward them all.
    let accept: Vec<&str> = request
        .headers()
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .collect();
    let accept = (!accept.is_empty()).then(|| accept.join(", "));
    let path = namespace.path(repository);
    let mut failure = None;
    for upstream in state.upstreams(namespace).await? {
        match state
            .proxy
            .manifest(&upstream, path, reference, accept.as_deref())
            .await
        {
            Ok(Some(served)) => {
                let Some(cache) = upstream.cache_repository(path) else {
                    continue;
                };
                let (digest, manifest) =
                    cached(state, &cache, &Reference::Digest(served.digest)).await?;
                return Ok(Some((digest, manifest, served.warning)));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(proxy = %upstream.key, error = %e, "pull-through failed");
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) => Err(upstream_error(e)),
        None => Ok(None),
    }
}

async fn put(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    reference: Reference,
    principal: Option<&Principal>,
    body: Body,
) -> RegistryResult<Response> {
    let bytes = crate::body::read_limited(body, MAX_MANIFEST_BYTES)
        .await
        .ok_or_else(|| {
            RegistryError::new(
                ErrorCode::TooLarge,
                format!("a manifest may be at most {MAX_MANIFEST_BYTES} bytes"),
            )
        })?;
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let ctx = context(request, principal);
    let stored =
        push::store_manifest(state, &ctx, repository, &bytes, content_type, reference).await?;
    let digest = stored.digest;
    let mut builder = Response::builder()
        .status(StatusCode::CREATED)
        .header("Location", format!("/v2/{repository}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest.as_str())
        .header("Content-Length", "0");
    if let Some(subject) = &stored.manifest.subject {
        builder = builder.header("OCI-Subject", subject.digest.as_str());
    }
    Ok(builder.finish())
}

/// `GET /v2/<name>/tags/list?n=&last=`.
pub async fn tags(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
) -> RegistryResult<Response> {
    state.admit(request, repository, &[Action::Pull]).await?;
    let n = page_size(request)?;
    let last = query(request, "last");
    let tags = repositories::tags(state.app.backend(), repository, last.as_deref(), n + 1).await?;
    let more = tags.len() as u64 > n;
    let tags: Vec<String> = tags.into_iter().take(n as usize).collect();
    let mut builder = Response::builder().content_type("application/json");
    if more && let Some(last) = tags.last() {
        builder = builder.header(
            "Link",
            format!("</v2/{repository}/tags/list?n={n}&last={last}>; rel=\"next\""),
        );
    }
    Ok(builder.body(json!({ "name": repository.as_str(), "tags": tags }).to_string()))
}

/// `GET /v2/_catalog?n=&last=`: the repositories the caller may pull.
pub async fn catalog(state: &RegistryState, request: &Request) -> RegistryResult<Response> {
    let principal = match access::credentials(state, request) {
        Some(Ok(principal)) => principal,
        _ => {
            return Err(access::challenge(
                state,
                request,
                Some("registry:catalog:*".into()),
            ));
        }
    };
    let n = page_size(request)?;
    let mut last = query(request, "last");
    let mut visible = Vec::new();
    // Read on until a page of visible names is full (or the catalog ends).
    loop {
        let batch =
            repositories::repositories(state.app.backend(), last.as_deref(), MAX_PAGE).await?;
        let done = (batch.len() as u64) < MAX_PAGE;
        last = batch.last().cloned();
        for name in batch {
            if visible.len() as u64 > n {
                break;
            }
            if RepositoryName::parse(&name)
                .is_ok_and(|repo| access::allows(&principal, &repo, Action::Pull))
            {
                visible.push(name);
            }
        }
        if done || visible.len() as u64 > n {
            break;
        }
    }
    let more = visible.len() as u64 > n;
    visible.truncate(n as usize);
    let mut builder = Response::builder().content_type("application/json");
    if more && let Some(last) = visible.last() {
        builder = builder.header(
            "Link",
            format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""),
        );
    }
    Ok(builder.body(json!({ "repositories": visible }).to_string()))
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an index of the manifests whose
/// subject is `digest`.
pub async fn referrers(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    raw_digest: &str,
) -> RegistryResult<Response> {
    state.admit(request, repository, &[Action::Pull]).await?;
    let digest = Digest::parse(raw_digest)
        .map_err(|e| RegistryError::new(ErrorCode::DigestInvalid, e.to_string()))?;
    let filter = query(request, "artifactType");
    let mut descriptors = Vec::new();
    for row in repositories::referrers(state.app.backend(), repository, &digest).await? {
        if filter
            .as_ref()
            .is_some_and(|f| row.record.artifact_type.as_ref() != Some(f))
        {
            continue;
        }
        let annotations = match state.blobs.read(&row.digest).await? {
            Some(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|m| m.get("annotations").cloned()),
            None => None,
        };
        let mut descriptor = json!({
            "mediaType": row.record.media_type,
            "digest": row.digest.as_str(),
            "size": row.record.size,
        });
        if let Some(artifact_type) = &row.record.artifact_type {
            descriptor["artifactType"] = json!(artifact_type);
        }
        if let Some(annotations) = annotations.filter(|a| a.is_object()) {
            descriptor["annotations"] = annotations;
        }
        descriptors.push(descriptor);
    }
    let mut builder = Response::builder().content_type(OCI_INDEX);
    if filter.is_some() {
        builder = builder.header("OCI-Filters-Applied", "artifactType");
    }
    Ok(builder.body(
        json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors }).to_string(),
    ))
}
