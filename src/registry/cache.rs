//! Hot reads: the registry or proxy each name stands for, manifests by digest, tag resolutions
//! and rendered Helm indexes, cached in memory (moka) and kept true by the event log. A
//! follower reads events as they are committed, by this process or any other on the same
//! database, and drops what they change; a process's own pushes and changes to registries and
//! proxies also drop their entries at once, so it reads its own writes. Any change to a
//! registry or proxy drops every namespace (they are few, and the mirror stands behind every
//! unknown name); one deleted drops everything, since all its repositories go with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use moka::future::Cache;

use crate::app::App;
use crate::domain::ResourceKind;
use crate::domain::oci::{Digest, RepositoryName, Tag};
use crate::domain::repository::{self, RepositoryEvent};
use crate::domain::stored::from_stored;
use crate::event_store::{EventFilter, RecordedEvent};
use crate::projections::repositories;

use super::Namespace;

/// The longest a registry's or proxy's settings are answered from memory without a fresh read.
const NAMESPACE_TTL: Duration = Duration::from_secs(30);

/// A manifest ready to serve.
#[derive(Debug, Clone)]
pub struct CachedManifest {
    /// Its media type.
    pub media_type: String,
    /// Its bytes, exactly as pushed.
    pub bytes: bytes::Bytes,
}

/// A rendered document (a Helm repository index) with its entity tag.
#[derive(Debug, Clone)]
pub struct CachedDocument {
    /// The bytes to serve.
    pub body: bytes::Bytes,
    /// Its strong entity tag, quoted.
    pub etag: String,
}

/// Permission to cache what is read from the database after it was taken: see
/// [`ReadCache::ticket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// The caches `/v2` and `/helm` read through.
#[derive(Clone)]
pub struct ReadCache {
    /// What each first path component names: a registry, a proxy, or the mirror.
    namespaces: Cache<String, Namespace>,
    manifests: Cache<(String, Digest), Arc<CachedManifest>>,
    tags: Cache<(String, String), Digest>,
    /// Helm indexes by registry name.
    indexes: Cache<String, Arc<CachedDocument>>,
    /// Rendered Helm index entries by manifest and push time, which fix them.
    index_entries: Cache<(Digest, i128), Arc<str>>,
    /// Set once the follower knows where it starts: before that nothing is cached, since
    /// nothing would drop an entry that a change made in the meantime.
    following: Arc<AtomicBool>,
    /// Bumped before every invalidation, so that a fill that raced one is dropped.
    generation: Arc<AtomicU64>,
}

impl ReadCache {
    /// Caches bounded to about `max_bytes` of manifests, as much of Helm indexes and as much of
    /// their rendered entries.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            // The follower keeps them true; the time to live only bounds how long a stale
            // answer could last should the follower ever stop.
            namespaces: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(NAMESPACE_TTL)
                .build(),
            manifests: Cache::builder()
                .weigher(|_, m: &Arc<CachedManifest>| m.bytes.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(max_bytes)
                .build(),
            tags: Cache::builder().max_capacity(100_000).build(),
            indexes: Cache::builder()
                .weigher(|_, d: &Arc<CachedDocument>| d.body.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(max_bytes)
                .build(),
            index_entries: Cache::builder()
                .weigher(|_, text: &Arc<str>| text.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(max_bytes)
                .build(),
            following: Arc::default(),
            generation: Arc::default(),
        }
    }

    fn active(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Take a ticket before reading from the database; what was read may be cached with it
    /// only if nothing was invalidated in between (and the follower is running).
    pub fn ticket(&self) -> Option<Ticket> {
        self.active()
            .then(|| Ticket(self.generation.load(Ordering::Acquire)))
    }

    fn valid(&self, ticket: Ticket) -> bool {
        self.generation.load(Ordering::Acquire) == ticket.0
    }

    /// Inserts `value` under `key` if `ticket` is still valid; re-checks after the insert, so
    /// that an invalidation racing the insert cannot leave a stale entry behind.
    async fn fill<K, V>(&self, cache: &Cache<K, V>, key: K, value: V, ticket: Ticket)
    where
        K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if !self.valid(ticket) {
            return;
        }
        cache.insert(key.clone(), value).await;
        if !self.valid(ticket) {
            cache.invalidate(&key).await;
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// What `name` stands for, when cached.
    pub async fn namespace(&self, name: &str) -> Option<Namespace> {
        if !self.active() {
            return None;
        }
        self.namespaces.get(name).await
    }

    /// Remembers what `name` stands for.
    pub async fn put_namespace(&self, name: &str, namespace: Namespace, ticket: Ticket) {
        self.fill(&self.namespaces, name.to_owned(), namespace, ticket)
            .await;
    }

    /// Drops every namespace: a registry or upstream proxy changed.
    pub fn forget_namespaces(&self) {
        self.bump();
        self.namespaces.invalidate_all();
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
        ticket: Ticket,
    ) {
        let key = (repository.to_string(), digest.clone());
        self.fill(&self.manifests, key, manifest, ticket).await;
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
    pub async fn put_tag(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
        ticket: Ticket,
    ) {
        let key = (repository.to_string(), tag.to_string());
        self.fill(&self.tags, key, digest.clone(), ticket).await;
    }

    /// Drops a tag's resolution.
    pub async fn forget_tag(&self, repository: &str, tag: &str) {
        self.bump();
        self.tags
            .invalidate(&(repository.to_owned(), tag.to_owned()))
            .await;
    }

    /// Drops a manifest.
    pub async fn forget_manifest(&self, repository: &str, digest: &Digest) {
        self.bump();
        self.manifests
            .invalidate(&(repository.to_owned(), digest.clone()))
            .await;
    }

    /// The cached Helm index of `registry`.
    pub async fn index(&self, registry: &str) -> Option<Arc<CachedDocument>> {
        if !self.active() {
            return None;
        }
        self.indexes.get(registry).await
    }

    /// Remembers the Helm index of `registry`.
    pub async fn put_index(&self, registry: &str, index: Arc<CachedDocument>, ticket: Ticket) {
        self.fill(&self.indexes, registry.to_owned(), index, ticket)
            .await;
    }

    /// A rendered Helm index entry. Entries are immutable, so they need no invalidation.
    pub async fn index_entry(&self, key: &(Digest, i128)) -> Option<Arc<str>> {
        self.index_entries.get(key).await
    }

    /// Remembers a rendered Helm index entry.
    pub async fn put_index_entry(&self, key: (Digest, i128), text: Arc<str>) {
        self.index_entries.insert(key, text).await;
    }

    /// Drops the Helm index of `registry`.
    pub async fn forget_index(&self, registry: &str) {
        self.bump();
        self.indexes.invalidate(registry).await;
    }

    /// Drops what a deleted registry or upstream proxy held. Deletions are rare enough that
    /// dropping every entry beats tracking which belong to it.
    pub fn forget_all(&self) {
        self.bump();
        self.namespaces.invalidate_all();
        self.manifests.invalidate_all();
        self.tags.invalidate_all();
        self.indexes.invalidate_all();
    }

    /// Drops what one recorded event changes.
    pub async fn apply(&self, event: &RecordedEvent) {
        let category = event.stream.category.as_str();
        if category == ResourceKind::Registry.category()
            || category == ResourceKind::UpstreamProxy.category()
        {
            self.forget_namespaces();
        }
        if repositories::holder_deleted(event).is_some() {
            self.forget_all();
            return;
        }
        if event.stream.category != repository::CATEGORY {
            return;
        }
        let repository = event.stream.name.as_str();
        // Any change to a repository may change its registry's Helm index.
        if let Some((registry, _)) = repository.split_once('/') {
            self.forget_index(registry).await;
        }
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
            // Until the schema is in place (PostgreSQL migrates in the background at start)
            // the head cannot be read: ask again soon, then less often.
            let mut wait = Duration::from_millis(20);
            let start = loop {
                match app.backend().store().head().await {
                    Ok(head) => break head,
                    Err(_) => tokio::time::sleep(wait).await,
                }
                wait = (wait * 2).min(Duration::from_secs(1));
            };
            cache.following.store(true, Ordering::Release);
            let filter = EventFilter::default();
            let mut events = Box::pin(crate::app::follow(app, start, filter));
            while let Some(event) = events.next().await {
                cache.apply(&event).await;
            }
        });
    }
}
