//! Repository use cases: recording manifest pushes, tag moves and deletions as events. The
//! bytes are already in storage; the facts about referenced content come from the caller.

use super::{App, AppError, Context};
use crate::domain::ResourceKind;
use crate::domain::oci::{Digest, RepositoryName, Tag};
use crate::domain::repository::{
    self, ManifestRecord, PushPolicy, RepositoryCommand, RepositoryEvent, decide,
};
use crate::domain::stored::from_stored;
use crate::event_store::{ExpectedVersion, RecordedEvent, StoreError, StreamId};
use crate::projections::repositories::{self, Life};

/// How often a repository command is retried when a concurrent push wins.
const RETRIES: usize = 10;

/// A manifest whose bytes are stored, to record as pushed.
#[derive(Debug, Clone)]
pub struct ManifestPush {
    /// Its digest.
    pub digest: Digest,
    /// What it is.
    pub record: ManifestRecord,
    /// The tag it was pushed under, if any.
    pub tag: Option<Tag>,
    /// Referenced blobs and manifests the repository lacks.
    pub missing: Vec<Digest>,
}

impl App {
    /// Records a manifest push (and the tag move, when pushed by tag), under the policy of the
    /// repository's registry.
    pub async fn push_manifest(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        push: ManifestPush,
    ) -> Result<(), AppError> {
        let registry = self.registry(&repository.registry()).await?;
        self.record_push(ctx, repository, push, PushPolicy::of(&registry.doc))
            .await
    }

    /// Records a manifest an upstream proxy served into the proxy's cache repository.
    pub async fn record_cached_manifest(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        push: ManifestPush,
    ) -> Result<(), AppError> {
        self.record_push(ctx, repository, push, PushPolicy::default())
            .await
    }

    async fn record_push(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        push: ManifestPush,
        policy: PushPolicy,
    ) -> Result<(), AppError> {
        self.repository_command(
            ctx,
            repository,
            Some(&push.digest),
            push.tag.as_ref(),
            || RepositoryCommand::PushManifest {
                digest: push.digest.clone(),
                record: Box::new(push.record.clone()),
                tag: push.tag.clone(),
                missing: push.missing.clone(),
                policy,
            },
        )
        .await
    }

    /// Deletes a manifest and the tags pointing at it.
    pub async fn delete_manifest(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), AppError> {
        self.repository_command(ctx, repository, Some(digest), None, || {
            RepositoryCommand::DeleteManifest {
                digest: digest.clone(),
            }
        })
        .await
    }

    /// Deletes a tag.
    pub async fn delete_tag(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> Result<(), AppError> {
        self.repository_command(ctx, repository, None, Some(tag), || {
            RepositoryCommand::DeleteTag { tag: tag.clone() }
        })
        .await
    }

    async fn repository_command(
        &self,
        ctx: &Context,
        repository: &RepositoryName,
        digest: Option<&Digest>,
        tag: Option<&Tag>,
        command: impl Fn() -> RepositoryCommand,
    ) -> Result<(), AppError> {
        for _ in 0..RETRIES {
            let (state, version) =
                repositories::state_for(&self.backend, repository, digest, tag).await?;
            let events = decide(&state, command())?;
            if events.is_empty() {
                return Ok(());
            }
            let stream = StreamId::new(repository::CATEGORY, repository.as_str());
            let request = super::request(ctx, stream, ExpectedVersion::Exact(version), &events);
            match self.backend.store().append(request).await {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "repository {repository} kept changing concurrently; try again"
        )))
    }
}

/// Where a tag pointed over time.
#[derive(Debug, Clone)]
pub struct TagHistory {
    /// Every move and deletion of the tag, and every deletion of the registry (or upstream
    /// proxy) holding it, which ended it; oldest first.
    pub events: Vec<RecordedEvent>,
    /// Where the tag pointed at the end of `events`, if it existed then.
    pub digest: Option<Digest>,
}

/// One step of a tag's story.
enum Step {
    /// The tag moved to a manifest.
    Moved(Digest),
    /// The tag was deleted.
    Deleted,
    /// The registry (or upstream proxy) holding it was created, or deleted.
    Holder(Life),
}

impl App {
    /// Where `tag` in `repository` pointed, up to `until` (or now).
    pub async fn tag_history(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
        until: Option<time::OffsetDateTime>,
    ) -> Result<TagHistory, AppError> {
        let store = self.backend.store();
        let stream = StreamId::new(repository::CATEGORY, repository.as_str());
        let mut steps: Vec<(Step, RecordedEvent)> = store
            .read_stream(&stream, until)
            .await?
            .into_iter()
            .filter_map(|event| {
                let step =
                    match from_stored(&event.event_type, event.schema_version, &event.payload) {
                        Ok(RepositoryEvent::TagMoved { tag: t, digest }) if t == *tag => {
                            Step::Moved(digest)
                        }
                        Ok(RepositoryEvent::TagDeleted { tag: t }) if t == *tag => Step::Deleted,
                        _ => return None,
                    };
                Some((step, event))
            })
            .collect();
        // The name may have held a registry in one life and an upstream proxy in another.
        let holder = repository.registry();
        for category in [ResourceKind::Registry, ResourceKind::UpstreamProxy].map(|k| k.category())
        {
            let holder = StreamId::new(category, holder.as_str());
            let lives = store.read_stream(&holder, until).await?;
            steps.extend(lives.into_iter().filter_map(|event| {
                let (_, life) = repositories::holder_life(&event)?;
                Some((Step::Holder(life), event))
            }));
        }
        steps.sort_by_key(|(_, event)| event.position);
        // A move recorded while the holder did not exist (a push that raced its deletion)
        // changed nothing anyone could pull.
        let (mut digest, mut live) = (None, true);
        for (step, _) in &steps {
            match step {
                Step::Moved(moved) if live => digest = Some(moved.clone()),
                Step::Moved(_) => {}
                Step::Deleted => digest = None,
                Step::Holder(Life::Began) => live = true,
                Step::Holder(Life::Ended) => (live, digest) = (false, None),
            }
        }
        let events = steps
            .into_iter()
            .filter(|(step, _)| !matches!(step, Step::Holder(Life::Began)))
            .map(|(_, event)| event)
            .collect();
        Ok(TagHistory { events, digest })
    }
}
