//! Blob files and links: every blob is hashed (streamed, so memory stays flat) and compared
//! with its name; a corrupt or stray file is moved to quarantine on repair. A link to a blob
//! that is not stored is removed on repair, so that the blob can be pushed again.

use std::collections::HashSet;
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::{FsckError, Kind, Run};
use crate::domain::oci::Digest;
use crate::storage::BlobFile;

/// How much of a blob is read at a time.
const CHUNK: usize = 1024 * 1024;

/// Hashes every blob; returns the digests whose bytes are intact.
pub(super) async fn check(run: &mut Run<'_>) -> Result<HashSet<Digest>, FsckError> {
    let files = run.blobs.blob_files().await?;
    let total: u64 = files
        .iter()
        .map(|f| match f {
            BlobFile::Blob { size, .. } => *size,
            BlobFile::Stray { .. } => 0,
        })
        .sum();
    let mut present = HashSet::new();
    let mut hashed = 0u64;
    for file in files {
        match file {
            BlobFile::Stray { path } => {
                run.report.found(
                    Kind::StrayFile,
                    run.relative(&path),
                    "a file in the blob store whose path is not a blob's",
                );
                if run.options.repair {
                    let moved = run.blobs.quarantine(&path).await?;
                    let moved = run.relative(&moved);
                    run.report.repaired_last(format!("moved to {moved}"));
                }
            }
            BlobFile::Blob { digest, path, size } => {
                let progress = |n: u64| (run.progress)("hashing blobs (bytes)", hashed + n, total);
                let Some(actual) = hash_file(&path, progress).await? else {
                    continue; // Gone since it was listed.
                };
                hashed += size;
                run.report.summary.blobs += 1;
                run.report.summary.blob_bytes += size;
                if actual == digest {
                    present.insert(digest);
                    continue;
                }
                run.report.found(
                    Kind::CorruptBlob,
                    digest.as_str(),
                    format!("its {size} bytes hash to {actual}"),
                );
                if run.options.repair {
                    let moved = run.blobs.quarantine(&path).await?;
                    let moved = run.relative(&moved);
                    run.report.repaired_last(format!(
                        "moved to {moved}; pushing the blob again restores it"
                    ));
                }
            }
        }
    }
    Ok(present)
}

/// The sha256 of a file, read in chunks; `None` when the file is gone. `progress` hears how
/// many bytes of it were read so far.
async fn hash_file(path: &Path, progress: impl Fn(u64)) -> Result<Option<Digest>, FsckError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::storage::StorageError::Io(e).into()),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut read = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(crate::storage::StorageError::Io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
        progress(read);
    }
    Ok(Some(Digest::from_sha256(&hasher.finalize())))
}

/// Checks that every link names a stored blob.
pub(super) async fn check_links(
    run: &mut Run<'_>,
    present: &HashSet<Digest>,
) -> Result<(), FsckError> {
    for link in run.blobs.links().await? {
        run.report.summary.links += 1;
        let object = match &link.digest {
            Some(digest) if run.stored(present, digest).await? => continue,
            Some(digest) => {
                run.report.found(
                    Kind::DanglingLink,
                    format!("{}@{digest}", link.repository),
                    "the repository links a blob that is not stored: a manifest naming it would be accepted",
                );
                "removed the link; the blob can be pushed again"
            }
            None => {
                run.report.found(
                    Kind::StrayFile,
                    run.relative(&link.path),
                    "a file among a repository's links whose name is not a digest",
                );
                "removed it"
            }
        };
        if run.options.repair {
            run.blobs.remove_leftover(&link.path).await?;
            run.report.repaired_last(object);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_hashes_to_the_digest_of_its_bytes_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let bytes: Vec<u8> = (0..(CHUNK * 2 + 7)).map(|n| n as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let digest = hash_file(&path, |n| seen.lock().unwrap().push(n))
            .await
            .unwrap();
        assert_eq!(digest, Some(Digest::from_sha256(&Sha256::digest(&bytes))));
        assert_eq!(seen.lock().unwrap().last(), Some(&(bytes.len() as u64)));
        assert_eq!(
            hash_file(&dir.path().join("gone"), |_| {}).await.unwrap(),
            None
        );
    }
}
