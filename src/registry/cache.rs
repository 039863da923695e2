//! Hot reads: manifests by digest and tag resolutions, cached in memory (moka) and kept true
//! by the event log. A follower reads repository events as they are committed, by this
//! process or any other on the same database, and drops what they change; a process's own
//! pushes also drop their entries at once, so it reads its own writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use moka::future::Cache;

use crate::app::App;
use crate::domain::oci::{Digest, RepositoryName, Tag};
use crate::domain::repository::{self, RepositoryEvent};
use crate::domain::stored::from_stored;
use crate::event_store::{EventFilter, RecordedEvent};

/// A manifest ready to serve.
#[derive(Debug, Clone)]
pub struct CachedManifest {
    /// Its media type.
    pub media_type: String,
    /// Its bytes, exactly as pushed.
    pub bytes: bytes::Bytes,
}

/// The caches `/v2` reads through.
#[derive(Clone)]
pub struct ManifestCache {
    manifests: Cache<(String, Digest), Arc<CachedManifest>>,
    tags: Cache<(String, String), Digest>,
    /// Set once the follower knows where it starts: before that nothing is cached, since
    /// nothing would drop an entry that a change made in the meantime.
    following: Arc<AtomicBool>,
}

impl ManifestCache {
    /// Caches bounded to about `max_bytes` of manifests.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            manifests: Cache::builder()
                .weigher(|_, m: &Arc<CachedManifest>| m.bytes.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(max_bytes)
                .build(),
            tags: Cache::builder().max_capacity(100_000).build(),
            following: Arc::default(),
        }
    }

    fn active(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Whether what is read from the database from now on may be cached: check it before
    /// the read, so that nothing read before the follower started is kept.
    pub fn accepts_fills(&self) -> bool {
        self.active()
    }

    /// The cached manifest `digest` of `repository`.
    pub async fn manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Option<Arc<CachedManifest>> {
        self.manifests
            .get(&(repository.to_string(), digest.clone()))
            .await
    }

    /// Remembers a manifest of `repository`.
    pub async fn put_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        manifest: Arc<CachedManifest>,
    ) {
        self.manifests
            .insert((repository.to_string(), digest.clone()), manifest)
            .await;
    }

    /// The cached resolution of `tag` in `repository`.
    pub async fn tag(&self, repository: &RepositoryName, tag: &Tag) -> Option<Digest> {
        if !self.active() {
            return None;
        }
        self.tags
            .get(&(repository.to_string(), tag.to_string()))
            .await
    }

    /// Remembers where `tag` points.
    pub async fn put_tag(&self, repository: &RepositoryName, tag: &Tag, digest: &Digest) {
        if !self.active() {
            return;
        }
        self.tags
            .insert((repository.to_string(), tag.to_string()), digest.clone())
            .await;
    }

    /// Drops a tag's resolution.
    pub async fn forget_tag(&self, repository: &str, tag: &str) {
        self.tags
            .invalidate(&(repository.to_owned(), tag.to_owned()))
            .await;
    }

    /// Drops a manifest.
    pub async fn forget_manifest(&self, repository: &str, digest: &Digest) {
        self.manifests
            .invalidate(&(repository.to_owned(), digest.clone()))
            .await;
    }

    /// Drops what one recorded event changes.
    pub async fn apply(&self, event: &RecordedEvent) {
        if event.stream.category != repository::CATEGORY {
            return;
        }
        let repository = event.stream.name.as_str();
        let Ok(event) =
            from_stored::<RepositoryEvent>(&event.event_type, event.schema_version, &event.payload)
        else {
            return;
        };
        match event {
            RepositoryEvent::TagMoved { tag, .. } | RepositoryEvent::TagDeleted { tag } => {
                self.forget_tag(repository, tag.as_str()).await;
            }
            RepositoryEvent::ManifestDeleted { digest } => {
                self.forget_manifest(repository, &digest).await
            }
            RepositoryEvent::ManifestPushed { .. } => {}
        }
    }

    /// Follows the log from now on and keeps the caches true, for the life of the process.
    pub fn spawn_follower(&self, app: App) {
        let cache = self.clone();
        tokio::spawn(async move {
            let start = loop {
                match app.backend().store().head().await {
                    Ok(head) => break head,
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            cache.following.store(true, Ordering::Release);
            let filter = EventFilter {
                category: Some(repository::CATEGORY.to_owned()),
                ..Default::default()
            };
            let mut events = Box::pin(crate::app::follow(app, start, filter));
            while let Some(event) = events.next().await {
                cache.apply(&event).await;
            }
        });
    }
}
