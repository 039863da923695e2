//! Manifests through a proxy: stored byte for byte and checked against their digest; by
//! digest never asked again; a tag trusted for the proxy's TTL, then confirmed with a `HEAD`;
//! served stale with a `Warning` when the remote fails.

use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use sha2::Digest as _;

use super::stats::Count;
use super::{
    Confirmation, MANIFEST_ACCEPT, ProxyError, PullThrough, Served, Upstream, read_limited,
};
use crate::app::{AppError, ManifestPush};
use crate::domain::manifest;
use crate::domain::oci::{Digest, Reference, RepositoryName, Tag};
use crate::domain::repository::ManifestRecord;
use crate::projections::repositories;
use crate::storage::BlobStore;

impl PullThrough {
    /// Makes the cache repository of `path` hold `reference` as the remote has it (a tag within
    /// its TTL), and names the manifest to serve; `None` when neither has it.
    pub async fn manifest(
        &self,
        upstream: &Upstream,
        path: &str,
        reference: &Reference,
        accept: Option<&str>,
    ) -> Result<Option<Served>, ProxyError> {
        let Some(cache) = upstream.cache_repository(path) else {
            return Ok(None);
        };
        // Single flight: requests for one manifest take turns, so only the first asks the
        // remote and the others find what it stored.
        let turn = self
            .manifest_turns
            .get_with(format!("{cache}@{reference}"), async { Arc::default() })
            .await;
        let _turn = turn.lock().await;
        let backend = self.app.backend();
        let local = match reference {
            Reference::Digest(digest) => {
                if repositories::manifest(backend, &cache, digest)
                    .await
                    .map_err(AppError::from)?
                    .is_some()
                {
                    // Content by digest never changes: no need to ask.
                    self.stats.count(upstream.key.as_str(), Count::Hit);
                    return Ok(Some(Served {
                        digest: digest.clone(),
                        warning: None,
                    }));
                }
                None
            }
            Reference::Tag(tag) => {
                let local = repositories::resolve_tag(backend, &cache, tag)
                    .await
                    .map_err(AppError::from)?
                    .map(|row| row.digest);
                let key = confirmation(upstream, &cache, tag);
                if let Some(digest) = &local
                    && let Some(at) = self.confirmed.get(&key).await
                    && at.elapsed() < upstream.tag_ttl
                {
                    self.stats.count(upstream.key.as_str(), Count::Hit);
                    return Ok(Some(Served {
                        digest: digest.clone(),
                        warning: None,
                    }));
                }
                local
            }
        };
        match self
            .fetch_manifest(upstream, path, &cache, reference, accept, local.as_ref())
            .await
        {
            Ok(found) => Ok(found.map(|digest| Served {
                digest,
                warning: None,
            })),
            Err(e) if e.remote_failed() && local.is_some() => {
                tracing::warn!(proxy = %upstream.key, error = %e, "serving a cached tag");
                self.stats.count(upstream.key.as_str(), Count::Error);
                self.stats.count(upstream.key.as_str(), Count::Stale);
                Ok(local.map(|digest| Served {
                    digest,
                    warning: Some(format!("110 - \"response is stale: {e}\"")),
                }))
            }
            Err(e) => {
                if e.remote_failed() {
                    self.stats.count(upstream.key.as_str(), Count::Error);
                }
                Err(e)
            }
        }
    }

    async fn fetch_manifest(
        &self,
        upstream: &Upstream,
        path: &str,
        cache: &RepositoryName,
        reference: &Reference,
        accept: Option<&str>,
        local: Option<&Digest>,
    ) -> Result<Option<Digest>, ProxyError> {
        let remote = format!("/v2/{}/manifests/{reference}", upstream.remote_path(path));
        let accept = Some(accept.unwrap_or(MANIFEST_ACCEPT));
        if let (Some(local), Reference::Tag(tag)) = (local, reference) {
            // A HEAD tells whether the tag still points where it did.
            let Some(head) = self.fetch(upstream, Method::HEAD, &remote, accept).await? else {
                return Ok(None);
            };
            if header_digest(&head).as_ref() == Some(local) {
                self.stats.count(upstream.key.as_str(), Count::Hit);
                self.confirm(upstream, cache, tag).await;
                return Ok(Some(local.clone()));
            }
        }
        let Some(response) = self.fetch(upstream, Method::GET, &remote, accept).await? else {
            return Ok(None);
        };
        let announced = header_digest(&response);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let invalid = |reason: String| ProxyError::Invalid {
            proxy: upstream.key.to_string(),
            reason,
        };
        let bytes = read_limited(response, manifest::MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| invalid(format!("reading {remote}: {e}")))?;
        let digest = Digest::from_sha256(&sha2::Sha256::digest(&bytes));
        self.stats.count(upstream.key.as_str(), Count::Miss);
        self.stats
            .count(upstream.key.as_str(), Count::Bytes(bytes.len() as u64));
        tracing::info!(proxy = %upstream.key, %remote, %digest, "fetched a manifest");
        let expected = match reference {
            Reference::Digest(named) => Some(named.clone()),
            Reference::Tag(_) => announced,
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(invalid(format!(
                "{remote} hashes to {digest}, not {expected}"
            )));
        }
        let parsed = manifest::parse(&bytes, content_type.as_deref())
            .map_err(|e| invalid(format!("{remote}: {e}")))?;
        self.blobs.put(&digest, &bytes).await?;
        let tag = match reference {
            Reference::Tag(tag) => Some(tag.clone()),
            Reference::Digest(_) => None,
        };
        let push = ManifestPush {
            digest: digest.clone(),
            record: ManifestRecord {
                media_type: parsed.media_type,
                size: bytes.len() as u64,
                subject: parsed.subject.map(|s| s.digest),
                artifact_type: parsed.artifact_type,
                chart: None,
            },
            tag: tag.clone(),
            missing: Vec::new(),
        };
        self.app
            .record_cached_manifest(&Self::context(upstream), cache, push)
            .await?;
        if let Some(tag) = &tag {
            self.confirm(upstream, cache, tag).await;
        }
        Ok(Some(digest))
    }

    async fn confirm(&self, upstream: &Upstream, cache: &RepositoryName, tag: &Tag) {
        self.confirmed
            .insert(confirmation(upstream, cache, tag), Instant::now())
            .await;
    }
}

/// The key of a tag's confirmation time. It names the remote too: a confirmation from the
/// remote a proxy had before its URL changed says nothing of the one it has now.
fn confirmation(upstream: &Upstream, cache: &RepositoryName, tag: &Tag) -> Confirmation {
    (
        upstream.key.to_string(),
        upstream.endpoint.base.clone(),
        cache.to_string(),
        tag.to_string(),
    )
}

fn header_digest(response: &reqwest::Response) -> Option<Digest> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok())
}
