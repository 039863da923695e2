//! Blobs and uploads: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>` and the upload session
//! routes (monolithic, chunked, cross-repository mount).

use poem::http::{Method, StatusCode};
use poem::{Body, Request, Response};
use tokio::io::AsyncRead;

use super::access::{self, Action};
use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use super::ranges::{byte_range, content_range_start};
use super::{Namespace, RegistryState, upstream_error};
use crate::domain::oci::{Digest, RepositoryName};
use crate::proxy::{BlobFetch, RemoteBlob};
use crate::storage::{BlobStore, UploadError, UploadId};

/// How much of a blob is read and sent at a time.
const STREAM_CHUNK: usize = 2 * 1024 * 1024;

fn digest(raw: &str) -> RegistryResult<Digest> {
    Digest::parse(raw).map_err(|e| RegistryError::new(ErrorCode::DigestInvalid, e.to_string()))
}

/// The digest of a blob path. A malformed `algorithm:hex` is `DIGEST_INVALID` (400), and
/// anything else is `BLOB_UNKNOWN` (404): Distribution answers the same statuses, the second
/// because its route only matches the digest's shape.
fn blob_digest(raw: &str) -> RegistryResult<Digest> {
    if raw.contains(':') {
        return digest(raw);
    }
    Err(RegistryError::new(
        ErrorCode::BlobUnknown,
        format!("{raw:?} is not a digest, so no blob has it"),
    ))
}

fn query(request: &Request, key: &str) -> Option<String> {
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn upload_error(e: UploadError) -> RegistryError {
    match e {
        UploadError::Unknown => RegistryError::new(ErrorCode::BlobUploadUnknown, "upload unknown"),
        UploadError::OutOfOrder { expected, .. } => {
            RegistryError::new(ErrorCode::RangeInvalid, e.to_string())
                .header("Range", range_header(expected))
        }
        UploadError::DigestMismatch { .. } => {
            RegistryError::new(ErrorCode::DigestInvalid, e.to_string())
        }
        UploadError::Body(_) => RegistryError::new(ErrorCode::BlobUploadInvalid, e.to_string()),
        UploadError::TooMany { .. } => {
            RegistryError::new(ErrorCode::TooManyRequests, e.to_string())
        }
        UploadError::Storage(e) => e.into(),
    }
}

/// `Range: 0-<last byte>` as upload responses write it (`0-0` before any byte).
fn range_header(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn upload_location(repository: &RepositoryName, id: UploadId) -> String {
    format!("/v2/{repository}/blobs/uploads/{id}")
}

fn accepted(
    repository: &RepositoryName,
    id: UploadId,
    offset: u64,
    status: StatusCode,
) -> Response {
    Response::builder()
        .status(status)
        .header("Location", upload_location(repository, id))
        .header("Range", range_header(offset))
        .header("Docker-Upload-UUID", id.to_string())
        .header("Content-Length", "0")
        .finish()
}

fn created(repository: &RepositoryName, digest: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header("Location", format!("/v2/{repository}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest.as_str())
        .header("Content-Length", "0")
        .finish()
}

/// `GET`, `HEAD` or `DELETE` of a blob.
pub async fn blob(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    raw_digest: &str,
) -> RegistryResult<Response> {
    let method = request.method().clone();
    let action = if method == Method::DELETE {
        Action::Delete
    } else {
        Action::Pull
    };
    let admitted = state.admit(request, repository, &[action]).await?;
    let digest = blob_digest(raw_digest)?;
    let unknown = || {
        RegistryError::new(
            ErrorCode::BlobUnknown,
            format!("blob {digest} is not in {repository}"),
        )
    };
    if method == Method::DELETE {
        return if state.blobs.unlink(repository, &digest).await? {
            Ok(Response::builder()
                .status(StatusCode::ACCEPTED)
                .header("Content-Length", "0")
                .finish())
        } else {
            Err(unknown())
        };
    }
    if state.blobs.is_linked(repository, &digest).await? {
        return stored(state, request, &digest, unknown).await;
    }
    let upstreams = match &admitted.namespace {
        Namespace::Registry(registry) if registry.doc.upstreams.is_empty() => Vec::new(),
        namespace => state.upstreams(namespace).await?,
    };
    // Fetched before through one of the proxies?
    for upstream in &upstreams {
        if let Some(cache) = upstream.cache_repository(admitted.namespace.path(repository))
            && state.blobs.is_linked(&cache, &digest).await?
        {
            state.proxy.count_hit(upstream.key.as_str());
            return stored(state, request, &digest, unknown).await;
        }
    }
    let mut failure = None;
    for upstream in &upstreams {
        let path = admitted.namespace.path(repository);
        let fetched = if method == Method::HEAD {
            state
                .proxy
                .blob_size(upstream, path, &digest)
                .await
                .map(|size| size.map(|size| head(&digest, size)))
        } else {
            match state.proxy.blob(upstream, path, &digest).await {
                Ok(BlobFetch::Stored) => return stored(state, request, &digest, unknown).await,
                Ok(BlobFetch::Streaming(blob)) => Ok(Some(streaming(&digest, blob))),
                Ok(BlobFetch::Missing) => Ok(None),
                Err(e) => Err(e),
            }
        };
        match fetched {
            Ok(Some(response)) => return Ok(response),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(proxy = %upstream.key, error = %e, "pull-through failed");
                failure = Some(e);
            }
        }
    }
    Err(failure.map(upstream_error).unwrap_or_else(unknown))
}

/// The answer to a `HEAD` of a blob the remote has.
fn head(digest: &Digest, size: u64) -> Response {
    Response::builder()
        .header("Docker-Content-Digest", digest.as_str())
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", size.to_string())
        .finish()
}

/// A blob streaming through from the remote.
fn streaming(digest: &Digest, blob: RemoteBlob) -> Response {
    let mut builder = Response::builder()
        .header("Docker-Content-Digest", digest.as_str())
        .header("Content-Type", "application/octet-stream");
    if let Some(size) = blob.size {
        builder = builder.header("Content-Length", size.to_string());
    }
    builder.body(Body::from_bytes_stream(blob.chunks))
}

/// A stored blob, whole or by `Range`.
async fn stored(
    state: &RegistryState,
    request: &Request,
    digest: &Digest,
    unknown: impl Fn() -> RegistryError,
) -> RegistryResult<Response> {
    let method = request.method().clone();
    let Some(size) = state.blobs.stat(digest).await? else {
        return Err(unknown());
    };
    let range = match request.headers().get("range").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(header) => Some(byte_range(header, size).ok_or_else(|| {
            RegistryError::new(
                ErrorCode::RangeInvalid,
                format!("range {header:?} cannot be served from {size} bytes"),
            )
            .header("Content-Range", format!("bytes */{size}"))
        })?),
    };
    let builder = Response::builder()
        .header("Docker-Content-Digest", digest.as_str())
        .header("Accept-Ranges", "bytes")
        .header("Content-Type", "application/octet-stream");
    let (status, start, len, builder) = match range {
        None => (StatusCode::OK, 0, size, builder),
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end - start + 1,
            builder.header("Content-Range", format!("bytes {start}-{end}/{size}")),
        ),
    };
    let builder = builder
        .status(status)
        .header("Content-Length", len.to_string());
    if method == Method::HEAD {
        return Ok(builder.finish());
    }
    let blob = state
        .blobs
        .open(digest, start, Some(len))
        .await?
        .ok_or_else(unknown)?;
    // Large reads keep a pull near the disk's and the socket's speed.
    let chunks = tokio_util::io::ReaderStream::with_capacity(blob.reader, STREAM_CHUNK);
    Ok(builder.body(Body::from_bytes_stream(chunks)))
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a monolithic upload, or a new session.
pub async fn start(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    body: Body,
) -> RegistryResult<Response> {
    let principal = state
        .admit(request, repository, &[Action::Pull, Action::Push])
        .await?
        .principal;
    if let Some(mount) = query(request, "mount") {
        let digest = digest(&mount)?;
        let from = query(request, "from").and_then(|f| RepositoryName::parse(&f).ok());
        let mountable = match &from {
            Some(from) => {
                principal
                    .as_ref()
                    .is_some_and(|p| access::allows(p, from, Action::Pull))
                    && state.blobs.is_linked(from, &digest).await?
            }
            // Without `from`, only blobs already in this registry's repositories are mounted.
            None => state.blobs.linked_in_registry(repository, &digest).await?,
        };
        if mountable && state.blobs.stat(&digest).await?.is_some() {
            state.blobs.link(repository, &digest).await?;
            return Ok(created(repository, &digest));
        }
    }
    let id = state
        .blobs
        .start_upload(repository)
        .await
        .map_err(upload_error)?;
    if let Some(raw) = query(request, "digest") {
        let expected = digest(&raw)?;
        let mut reader = body.into_async_read();
        let reader: &mut (dyn AsyncRead + Send + Unpin) = &mut reader;
        state
            .blobs
            .finish_upload(repository, id, Some(reader), &expected)
            .await
            .map_err(upload_error)?;
        return Ok(created(repository, &expected));
    }
    Ok(accepted(repository, id, 0, StatusCode::ACCEPTED))
}

/// `GET`, `PATCH`, `PUT` or `DELETE /v2/<name>/blobs/uploads/<id>`.
pub async fn session(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    raw_id: &str,
    body: Body,
) -> RegistryResult<Response> {
    let method = request.method().clone();
    let action = if method == Method::GET {
        Action::Pull
    } else {
        Action::Push
    };
    state.admit(request, repository, &[action]).await?;
    let id = UploadId::parse(raw_id)
        .ok_or_else(|| RegistryError::new(ErrorCode::BlobUploadUnknown, "upload unknown"))?;
    let blobs = &state.blobs;
    match method {
        Method::GET => {
            let status = blobs
                .upload_status(repository, id)
                .await
                .map_err(upload_error)?;
            Ok(accepted(
                repository,
                id,
                status.offset,
                StatusCode::NO_CONTENT,
            ))
        }
        Method::DELETE => {
            blobs
                .cancel_upload(repository, id)
                .await
                .map_err(upload_error)?;
            Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
        }
        Method::PATCH => {
            let start = match request
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
            {
                None => None,
                Some(range) => Some(content_range_start(range).ok_or_else(|| {
                    RegistryError::new(
                        ErrorCode::BlobUploadInvalid,
                        format!("invalid Content-Range {range:?}; expected <start>-<end>"),
                    )
                })?),
            };
            // What a refused chunk leaves unread is drained by `crate::body::drain_unread`,
            // within its bounds, so the client hears the answer.
            let mut reader = body.into_async_read();
            let status = blobs
                .append_upload(repository, id, start, &mut reader)
                .await
                .map_err(upload_error)?;
            Ok(accepted(
                repository,
                id,
                status.offset,
                StatusCode::ACCEPTED,
            ))
        }
        Method::PUT => {
            let raw = query(request, "digest").ok_or_else(|| {
                RegistryError::new(
                    ErrorCode::DigestInvalid,
                    "the digest query parameter is required to finish an upload",
                )
            })?;
            let expected = digest(&raw)?;
            let mut reader = body.into_async_read();
            let reader: &mut (dyn AsyncRead + Send + Unpin) = &mut reader;
            blobs
                .finish_upload(repository, id, Some(reader), &expected)
                .await
                .map_err(upload_error)?;
            Ok(created(repository, &expected))
        }
        _ => Err(RegistryError::new(
            ErrorCode::Unsupported,
            "method not allowed on an upload",
        )),
    }
}
