//! Manifests and tags against storage: every manifest the read model holds has its bytes,
//! every tag points at such a manifest, and every blob a stored manifest references (config,
//! layers, so chart archives and provenance too) is stored and linked in its repository, as
//! is every child an index names. A manifest whose bytes are gone is deleted on repair, with
//! the tags pointing at it, through the repository aggregate: the log records who did it.
//! References are checked in the repositories of live registries only: a proxy's cache
//! repository fetches its blobs on demand, and a deleted registry serves nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{ACTOR, FsckError, Kind, Run};
use crate::app::Context;
use crate::domain::manifest;
use crate::domain::oci::{Digest, RepositoryName};
use crate::projections::inventory::{self, ManifestEntry, ResourceTable};
use crate::storage::BlobStore;

/// Checks the manifests and tags of every repository.
pub(super) async fn check(run: &mut Run<'_>, present: &HashSet<Digest>) -> Result<(), FsckError> {
    let manifests = inventory::manifests(run.backend).await?;
    let tags = inventory::tags(run.backend).await?;
    run.report.summary.manifests = manifests.len() as u64;
    run.report.summary.tags = tags.len() as u64;
    let mut held: BTreeSet<(String, String)> = manifests
        .iter()
        .map(|m| (m.repository.clone(), m.digest.clone()))
        .collect();
    let mut tags_of: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for tag in tags {
        let key = (tag.repository.clone(), tag.digest.clone());
        if !held.contains(&key) {
            run.report.found(
                Kind::DanglingTag,
                format!("{}:{}", tag.repository, tag.tag),
                format!(
                    "points at {}, which the repository does not hold",
                    tag.digest
                ),
            );
        }
        tags_of.entry(key).or_default().push(tag.tag);
    }
    let mut intact = Vec::new();
    for entry in manifests {
        let key = (entry.repository.clone(), entry.digest.clone());
        let Ok(digest) = Digest::parse(&entry.digest) else {
            continue; // The read model never holds one; the log check names it.
        };
        if run.stored(present, &digest).await? {
            intact.push((entry, digest));
            continue;
        }
        let tags = tags_of.remove(&key).unwrap_or_default();
        missing_manifest(run, &entry, &digest, &tags).await?;
        if run
            .report
            .findings
            .last()
            .is_some_and(|f| f.repaired.is_some())
        {
            held.remove(&key);
        }
    }
    let registries: HashSet<String> =
        inventory::resource_versions(run.backend, ResourceTable::Registries)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
    for (entry, digest) in intact {
        let registry = entry.repository.split('/').next().unwrap_or_default();
        if registries.contains(registry) {
            check_references(run, present, &held, &entry, &digest).await?;
        }
    }
    Ok(())
}

/// Reports a manifest without bytes and the tags pointing at it; on repair deletes it.
async fn missing_manifest(
    run: &mut Run<'_>,
    entry: &ManifestEntry,
    digest: &Digest,
    tags: &[String],
) -> Result<(), FsckError> {
    let object = format!("{}@{digest}", entry.repository);
    for tag in tags {
        run.report.found(
            Kind::DanglingTag,
            format!("{}:{tag}", entry.repository),
            format!("points at {object}, whose bytes are not stored"),
        );
    }
    run.report.found(
        Kind::MissingManifestBlob,
        object,
        "the repository holds this manifest but its bytes are not stored",
    );
    let Ok(repository) = RepositoryName::parse(&entry.repository) else {
        return Ok(());
    };
    if !run.options.repair {
        return Ok(());
    }
    let ctx = Context {
        actor: ACTOR.to_owned(),
        correlation_id: format!("fsck-{}", uuid::Uuid::now_v7()),
        idempotency: None,
    };
    run.app.delete_manifest(&ctx, &repository, digest).await?;
    let how = format!("deleted through the log by {ACTOR}; pushing it again restores it");
    // The tag findings just before it are repaired by the same deletion.
    let count = tags.len() + 1;
    let start = run.report.findings.len() - count;
    for finding in &mut run.report.findings[start..] {
        finding.repaired = Some(how.clone());
    }
    Ok(())
}

/// Checks what one stored manifest references.
async fn check_references(
    run: &mut Run<'_>,
    present: &HashSet<Digest>,
    held: &BTreeSet<(String, String)>,
    entry: &ManifestEntry,
    digest: &Digest,
) -> Result<(), FsckError> {
    let object = format!("{}@{digest}", entry.repository);
    let Some(bytes) = run.blobs.read(digest).await? else {
        return Ok(()); // Removed since: nothing to read references from.
    };
    let parsed = match manifest::parse(&bytes, Some(&entry.media_type)) {
        Ok(parsed) => parsed,
        Err(e) => {
            run.report
                .found(Kind::UnreadableManifest, object, e.to_string());
            return Ok(());
        }
    };
    let Ok(repository) = RepositoryName::parse(&entry.repository) else {
        return Ok(());
    };
    for blob in &parsed.blobs {
        let target = format!("{}@{}", entry.repository, blob.digest);
        if !run.stored(present, &blob.digest).await? {
            run.report.found(
                Kind::MissingBlob,
                target,
                format!("{object} references it but it is not stored; push it again"),
            );
        } else if !run.blobs.is_linked(&repository, &blob.digest).await? {
            run.report.found(
                Kind::MissingLink,
                target,
                format!("{object} references it; it is stored but the repository does not link it"),
            );
            if run.options.repair {
                run.blobs.link(&repository, &blob.digest).await?;
                run.report.repaired_last("linked it again");
            }
        }
    }
    for child in &parsed.manifests {
        if !held.contains(&(entry.repository.clone(), child.digest.to_string())) {
            run.report.found(
                Kind::MissingChildManifest,
                format!("{}@{}", entry.repository, child.digest),
                format!("the index {object} names it but the repository does not hold it"),
            );
        }
    }
    Ok(())
}
