//! Pull-through: what a registry or upstream proxy does not hold is fetched from the proxy's
//! remote, verified, stored and recorded, then served like local content.
//!
//! Content fetched through proxy `<key>` is kept in its cache repositories `<key>/<path>`:
//! manifests are recorded as repository events (actor `proxy:<key>`), blobs are stored by
//! digest and linked there. A manifest by digest, once stored, is served forever without
//! asking the remote again; a tag's resolution is trusted for the proxy's TTL (while the proxy
//! names the same remote) and then confirmed with a `HEAD` (which Docker Hub does not count
//! against its pull limit). When the remote fails, what is cached is served with a `Warning`.

mod blobs;
pub mod client;
pub mod flight;
pub mod helm;
mod manifests;
pub mod stats;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use moka::future::Cache;
use reqwest::{Method, StatusCode};

use crate::app::{App, AppError, Context};
use crate::domain::ResourceName;
use crate::domain::oci::{Digest, RepositoryName};
use crate::domain::upstream_proxy::{DockerSource, UpstreamProxy};
use crate::projections::resources::Stored;
use crate::storage::{FsBlobStore, StorageError};
use client::{Endpoint, UpstreamClient};
use flight::Flights;
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

/// What a tag's confirmation is kept under: proxy key, remote base URL, cache repository and
/// tag.
type Confirmation = (String, String, String, String);

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
    /// When a cached tag was last confirmed with its remote.
    confirmed: Cache<Confirmation, Instant>,
    /// Blob fetches in flight.
    flights: Flights,
    /// What each proxy did.
    stats: ProxyStats,
    /// Remote Helm indexes by proxy key.
    helm_indexes: Cache<String, Arc<helm::RemoteIndex>>,
    /// Proxies ready to fetch from, by key and version.
    upstreams: Cache<(String, u64), Upstream>,
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
            upstreams: Cache::builder().max_capacity(1_000).build(),
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
    /// Kept per proxy version, so its password is opened once per change, not per request.
    pub async fn upstream(&self, stored: &Stored<UpstreamProxy>) -> Result<Upstream, ProxyError> {
        let key = (stored.doc.key.to_string(), stored.version);
        if let Some(upstream) = self.upstreams.get(&key).await {
            return Ok(upstream);
        }
        let upstream = self.resolve(&stored.doc).await?;
        self.upstreams.insert(key, upstream.clone()).await;
        Ok(upstream)
    }

    async fn resolve(&self, proxy: &UpstreamProxy) -> Result<Upstream, ProxyError> {
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

    /// Forgets when proxy `key`'s cached tags were last confirmed, and its remote Helm index,
    /// so that each is asked of the remote again at its next pull; returns how many tags there
    /// were.
    pub async fn purge(&self, key: &str) -> u64 {
        let purged = self.confirmed.iter().filter(|(k, _)| k.0 == key).count();
        self.helm_indexes.invalidate(key).await;
        let key = key.to_owned();
        // Invalidation closures are enabled on this cache.
        let _ = self.confirmed.invalidate_entries_if(move |k, _| k.0 == key);
        self.confirmed.run_pending_tasks().await;
        purged as u64
    }

    /// Forgets all this instance knows of deleted proxy `key`, so that one created again
    /// under the key asks its own remote and counts from zero.
    pub async fn forget(&self, key: &str) {
        self.purge(key).await;
        self.stats.forget(key);
    }

    /// Proxy `key`'s counts since this instance started.
    pub fn stats(&self, key: &str) -> Snapshot {
        self.stats.snapshot(key)
    }

    /// Counts a pull proxy `key` served from its cache.
    pub fn count_hit(&self, key: &str) {
        self.stats.count(key, Count::Hit);
    }
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
