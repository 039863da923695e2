//! Pull-through: what a registry or upstream proxy does not hold is fetched from the proxy's
//! remote, verified, stored and recorded, then served like local content.
//!
//! Content fetched through proxy `<key>` is kept in its cache repositories `<key>/<path>`:
//! manifests are recorded as repository events (actor `proxy:<key>`), blobs are stored by
//! digest and linked there. A manifest by digest, once stored, is served forever without
//! asking the remote again; a tag's resolution is trusted for the proxy's TTL and then
//! confirmed with a `HEAD` (which Docker Hub does not count against its pull limit). When the
//! remote fails, what is cached is served with a `Warning`.

pub mod client;
pub mod flight;
pub mod helm;
pub mod stats;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use moka::future::Cache;
use reqwest::{Method, StatusCode};
use sha2::Digest as _;

use crate::app::{App, AppError, Context, ManifestPush};
use crate::domain::ResourceName;
use crate::domain::manifest;
use crate::domain::oci::{Digest, Reference, RepositoryName, Tag};
use crate::domain::repository::ManifestRecord;
use crate::domain::upstream_proxy::{DockerSource, UpstreamProxy};
use crate::projections::repositories;
use crate::storage::{BlobStore, FsBlobStore, StorageError};
use client::{Endpoint, UpstreamClient};
use flight::{Flight, Flights, Phase};
use stats::{Count, ProxyStats, Snapshot};

/// Every manifest type Berth stores, for remotes asked without an `Accept` of the client's.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Why pulling through a proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The remote could not be reached (or timed out).
    #[error("upstream proxy {proxy} is unreachable: {reason}")]
    Unreachable {
        /// The proxy's key.
        proxy: String,
        /// What failed.
        reason: String,
    },
    /// The remote's authentication failed.
    #[error("upstream proxy {proxy} could not authenticate: {reason}")]
    Auth {
        /// The proxy's key.
        proxy: String,
        /// What failed.
        reason: String,
    },
    /// The remote answered with an error.
    #[error("upstream proxy {proxy} answered {status} for {what}")]
    Status {
        /// The proxy's key.
        proxy: String,
        /// Its answer.
        status: u16,
        /// What was asked.
        what: String,
    },
    /// The remote sent something that is not what was asked for.
    #[error("upstream proxy {proxy} sent an invalid answer: {reason}")]
    Invalid {
        /// The proxy's key.
        proxy: String,
        /// What is wrong.
        reason: String,
    },
    /// A fetch shared with other requests failed.
    #[error("upstream proxy {proxy} failed: {reason}")]
    Failed {
        /// The proxy's key.
        proxy: String,
        /// What failed.
        reason: String,
    },
    /// Storing what was fetched failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Recording what was fetched failed.
    #[error(transparent)]
    App(#[from] AppError),
}

impl ProxyError {
    /// Whether cached content may stand in: the remote is down, overloaded or failing, as
    /// opposed to answering that it lacks the content.
    pub fn remote_failed(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Auth { .. } | Self::Failed { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// An upstream proxy ready to fetch from.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its key: the first component of its cache repositories.
    pub key: ResourceName,
    endpoint: Endpoint,
    /// Docker Hub names single-component images `library/<name>`.
    docker_hub: bool,
    tag_ttl: Duration,
}

impl Upstream {
    /// Where content of `path` fetched through this proxy is kept.
    pub fn cache_repository(&self, path: &str) -> Option<RepositoryName> {
        RepositoryName::parse(&format!("{}/{path}", self.key)).ok()
    }

    /// The repository name on the remote.
    fn remote_path(&self, path: &str) -> String {
        if self.docker_hub && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        }
    }
}

/// A manifest to serve from a cache repository.
#[derive(Debug, Clone)]
pub struct Served {
    /// Its digest.
    pub digest: Digest,
    /// Set when the remote failed and the cached answer stands in: the `Warning` to send.
    pub warning: Option<String>,
}

/// A blob streaming from the remote.
pub struct RemoteBlob {
    /// Its size, when the remote said.
    pub size: Option<u64>,
    /// The bytes, as they arrive; an error (and no last byte) if they turn out wrong.
    pub chunks: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
}

/// What asking the remote for a blob gave.
pub enum BlobFetch {
    /// The remote does not have it.
    Missing,
    /// It is stored now (a fetch by another request just finished).
    Stored,
    /// It is on its way.
    Streaming(RemoteBlob),
}

/// Pulls through upstream proxies.
#[derive(Clone)]
pub struct PullThrough {
    client: UpstreamClient,
    app: App,
    blobs: FsBlobStore,
    docker_hub_url: String,
    /// When a cached tag was last confirmed with its remote, by proxy key, cache repository
    /// and tag.
    confirmed: Cache<(String, String, String), Instant>,
    /// Blob fetches in flight.
    flights: Flights,
    /// What each proxy did.
    stats: ProxyStats,
    /// Remote Helm indexes by proxy key.
    helm_indexes: Cache<String, Arc<helm::RemoteIndex>>,
    /// One lock per manifest being resolved, by cache repository and reference.
    manifest_turns: Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

impl PullThrough {
    /// Pull-through for `app`, storing in `blobs`; Docker Hub sources go to `docker_hub_url`;
    /// remote Helm indexes are kept up to about `cache_bytes`.
    pub fn new(app: App, blobs: FsBlobStore, docker_hub_url: &str, cache_bytes: u64) -> Self {
        Self {
            client: UpstreamClient::new(),
            app,
            blobs,
            docker_hub_url: docker_hub_url.trim_end_matches('/').to_owned(),
            confirmed: Cache::builder()
                .max_capacity(100_000)
                .support_invalidation_closures()
                .build(),
            flights: Flights::default(),
            stats: ProxyStats::default(),
            manifest_turns: Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            helm_indexes: Cache::builder()
                .weigher(|_, index: &Arc<helm::RemoteIndex>| {
                    index.size.try_into().unwrap_or(u32::MAX)
                })
                .max_capacity(cache_bytes)
                .build(),
        }
    }

    /// The proxy `proxy`, ready to fetch from.
    pub async fn upstream(&self, proxy: &UpstreamProxy) -> Result<Upstream, ProxyError> {
        let docker_hub = proxy.remote.source == Some(DockerSource::DockerHub);
        let base = match (&proxy.remote.url, docker_hub) {
            (_, true) => self.docker_hub_url.clone(),
            (Some(url), false) => url.as_str().trim_end_matches('/').to_owned(),
            (None, false) => {
                return Err(ProxyError::Invalid {
                    proxy: proxy.key.to_string(),
                    reason: "the proxy has no remote URL".into(),
                });
            }
        };
        Ok(Upstream {
            key: proxy.key.clone(),
            endpoint: Endpoint {
                key: proxy.key.to_string(),
                base,
                credentials: self.app.upstream_credentials(proxy).await?,
            },
            docker_hub,
            tag_ttl: Duration::from_secs(proxy.cache.tag_ttl_seconds.into()),
        })
    }

    fn context(upstream: &Upstream) -> Context {
        Context {
            actor: format!("proxy:{}", upstream.key),
            correlation_id: uuid::Uuid::now_v7().to_string(),
            idempotency: None,
        }
    }

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

    /// Sends a request to the remote: `None` for a 404, an error naming the proxy for any
    /// other failure.
    async fn fetch(
        &self,
        upstream: &Upstream,
        method: Method,
        remote: &str,
        accept: Option<&str>,
    ) -> Result<Option<reqwest::Response>, ProxyError> {
        let response = self
            .client
            .send(&upstream.endpoint, method, remote, accept)
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ProxyError::Status {
                proxy: upstream.key.to_string(),
                status: status.as_u16(),
                what: remote.to_owned(),
            });
        }
        Ok(Some(response))
    }

    async fn confirm(&self, upstream: &Upstream, cache: &RepositoryName, tag: &Tag) {
        self.confirmed
            .insert(confirmation(upstream, cache, tag), Instant::now())
            .await;
    }

    /// Forgets when proxy `key`'s cached tags were last confirmed, so that each is asked for
    /// again at its next pull; returns how many there were.
    pub async fn purge_tags(&self, key: &str) -> u64 {
        let purged = self.confirmed.iter().filter(|(k, _)| k.0 == key).count();
        let key = key.to_owned();
        // Invalidation closures are enabled on this cache.
        let _ = self.confirmed.invalidate_entries_if(move |k, _| k.0 == key);
        self.confirmed.run_pending_tasks().await;
        purged as u64
    }

    /// Proxy `key`'s counts since this instance started.
    pub fn stats(&self, key: &str) -> Snapshot {
        self.stats.snapshot(key)
    }

    /// Counts a pull proxy `key` served from its cache.
    pub fn count_hit(&self, key: &str) {
        self.stats.count(key, Count::Hit);
    }

    /// The size of blob `digest` of `path` on the remote; `None` when it lacks it.
    pub async fn blob_size(
        &self,
        upstream: &Upstream,
        path: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, ProxyError> {
        let remote = format!("/v2/{}/blobs/{digest}", upstream.remote_path(path));
        let response = self.fetch(upstream, Method::HEAD, &remote, None).await?;
        Ok(response.and_then(|r| r.content_length()))
    }

    /// Blob `digest` of `path` from the remote, stored as it streams: one fetch however many
    /// ask at once (see [`flight`]). It is committed and linked into the cache repository only
    /// when the bytes hash to `digest`, and the fetch runs to the end even if every client goes
    /// away, so the next pull finds it stored.
    pub async fn blob(
        &self,
        upstream: &Upstream,
        path: &str,
        digest: &Digest,
    ) -> Result<BlobFetch, ProxyError> {
        let Some(cache) = upstream.cache_repository(path) else {
            return Ok(BlobFetch::Missing);
        };
        let (flight, leader) = self.flights.join(digest);
        if leader {
            self.start_fetch(upstream, path, &cache, digest, flight.clone())
                .await?;
        } else {
            // Joined a fetch that may be for another cache repository: link this one too.
            let (blobs, digest, mut progress) =
                (self.blobs.clone(), digest.clone(), flight.subscribe());
            tokio::spawn(async move {
                while !progress.borrow_and_update().done {
                    if progress.changed().await.is_err() {
                        return;
                    }
                }
                if progress.borrow().phase == Phase::Stored {
                    let _ = blobs.link(&cache, &digest).await;
                }
            });
        }
        let mut progress = flight.subscribe();
        let failed = |reason: String| ProxyError::Failed {
            proxy: upstream.key.to_string(),
            reason,
        };
        match flight::started(&mut progress).await.phase {
            Phase::Missing => Ok(BlobFetch::Missing),
            Phase::Stored => Ok(BlobFetch::Stored),
            Phase::Streaming { temp, size } => Ok(BlobFetch::Streaming(RemoteBlob {
                size,
                chunks: Box::pin(flight::read(temp, self.blobs.blob_path(digest), progress)),
            })),
            Phase::Failed(reason) => Err(failed(reason)),
            Phase::Starting => Err(failed("the fetch ended before it started".into())),
        }
    }

    /// Sends the request for a blob and, when the remote has it, copies it to storage in the
    /// background, publishing progress on `flight`.
    async fn start_fetch(
        &self,
        upstream: &Upstream,
        path: &str,
        cache: &RepositoryName,
        digest: &Digest,
        flight: Arc<Flight>,
    ) -> Result<(), ProxyError> {
        let remote = format!("/v2/{}/blobs/{digest}", upstream.remote_path(path));
        let response = match self.fetch(upstream, Method::GET, &remote, None).await {
            Ok(Some(response)) => response,
            Ok(None) => {
                self.flights.finish(digest, &flight, Phase::Missing);
                return Ok(());
            }
            Err(e) => {
                self.stats.count(upstream.key.as_str(), Count::Error);
                self.flights
                    .finish(digest, &flight, Phase::Failed(e.to_string()));
                return Err(e);
            }
        };
        self.stats.count(upstream.key.as_str(), Count::Miss);
        let mut writer = match self.blobs.writer(digest).await {
            Ok(writer) => writer,
            Err(e) => {
                self.flights
                    .finish(digest, &flight, Phase::Failed(e.to_string()));
                return Err(e.into());
            }
        };
        let temp = writer.temp_path().to_path_buf();
        let size = response.content_length();
        flight.update(|p| p.phase = Phase::Streaming { temp, size });
        let (blobs, flights, stats) =
            (self.blobs.clone(), self.flights.clone(), self.stats.clone());
        let (cache, digest, key) = (cache.clone(), digest.clone(), upstream.key.clone());
        tokio::spawn(async move {
            let mut response = response;
            let failure = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = writer.write(&chunk).await {
                            break Some(e.to_string());
                        }
                        flight.update(|p| p.written += chunk.len() as u64);
                        stats.count(key.as_str(), Count::Bytes(chunk.len() as u64));
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(format!("the transfer from {key} broke off: {e}")),
                }
            };
            let outcome = match failure {
                Some(reason) => Err(reason),
                None => match writer.commit().await {
                    Ok(()) => blobs.link(&cache, &digest).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the blob from {key} is not {digest}: {e}")),
                },
            };
            let phase = match outcome {
                Ok(()) => {
                    tracing::info!(proxy = %key, %digest, "fetched a blob");
                    Phase::Stored
                }
                Err(reason) => {
                    stats.count(key.as_str(), Count::Error);
                    tracing::warn!(proxy = %key, %digest, %reason, "discarded a fetched blob");
                    Phase::Failed(reason)
                }
            };
            flights.finish(&digest, &flight, phase);
        });
        Ok(())
    }
}

/// The key of a tag's confirmation time.
fn confirmation(
    upstream: &Upstream,
    cache: &RepositoryName,
    tag: &Tag,
) -> (String, String, String) {
    (upstream.key.to_string(), cache.to_string(), tag.to_string())
}

fn header_digest(response: &reqwest::Response) -> Option<Digest> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok())
}

pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(format!("larger than {limit} bytes"));
        }
    }
    Ok(bytes)
}
