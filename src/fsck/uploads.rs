//! What lies under `uploads/`: intact sessions are resumable (noted, not a problem); sessions
//! missing a file, sessions untouched past [`ABANDONED_UPLOAD_AGE`], temporary files of writes
//! that never finished and anything else are leftovers, removed on repair. Entries younger
//! than the grace period are taken for writes in flight and left alone.

use super::{FsckError, Kind, Run};
use crate::storage::{ABANDONED_UPLOAD_AGE, UploadEntry};

/// Checks every entry under `uploads/`.
pub(super) async fn check(run: &mut Run<'_>) -> Result<(), FsckError> {
    for entry in run.blobs.upload_entries().await? {
        run.report.summary.uploads += 1;
        let (path, kind, detail) = match entry {
            UploadEntry::Temp { age, .. } | UploadEntry::Stray { age, .. }
                if age < run.options.grace =>
            {
                continue;
            }
            UploadEntry::Temp { path, .. } => (
                path,
                Kind::TempFile,
                "the temporary file of a write that never finished".to_owned(),
            ),
            UploadEntry::Stray { path, .. } => (
                path,
                Kind::StrayFile,
                "neither an upload session nor a temporary file".to_owned(),
            ),
            UploadEntry::Session {
                path,
                repository: Some(repository),
                received: Some(received),
                age,
            } => {
                let id = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if age < ABANDONED_UPLOAD_AGE {
                    run.report.found(
                        Kind::OpenUpload,
                        run.relative(&path),
                        format!(
                            "resumable at byte {received}: /v2/{repository}/blobs/uploads/{id}"
                        ),
                    );
                    continue;
                }
                (
                    path,
                    Kind::AbandonedUpload,
                    format!(
                        "untouched for {}h with {received} bytes for {repository}",
                        age.as_secs() / 3600
                    ),
                )
            }
            UploadEntry::Session { age, .. } if age < run.options.grace => continue,
            UploadEntry::Session {
                path,
                repository,
                received,
                ..
            } => {
                let missing = match (repository, received) {
                    (None, None) => "its data and repository files are missing",
                    (None, Some(_)) => "its repository file is missing or names no repository",
                    (Some(_), _) => "its data file is missing",
                };
                (
                    path,
                    Kind::DeadUpload,
                    format!("cannot be resumed: {missing}"),
                )
            }
        };
        run.report.found(kind, run.relative(&path), detail);
        if run.options.repair {
            run.blobs.remove_leftover(&path).await?;
            run.report.repaired_last("removed it");
        }
    }
    Ok(())
}
