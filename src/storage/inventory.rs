//! What the filesystem store holds, walked entry by entry for `berth fsck`: blob files, links,
//! and what lies under `uploads/`; and the few changes a repair makes (quarantining a blob,
//! removing a leftover). The layout stays known to this module alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FsBlobStore, StorageError};
use crate::domain::oci::{Digest, RepositoryName};

/// The name prefix of the temporary file a manifest is written to before its rename.
pub(super) const PUT_PREFIX: &str = ".put-";
/// The name prefix of the temporary file a pull-through fetch streams to.
pub(super) const FETCH_PREFIX: &str = ".fetch-";

/// A file under `blobs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobFile {
    /// A file where a blob belongs: its name is a digest.
    Blob {
        /// The digest its name claims.
        digest: Digest,
        /// Where it is.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Anything else (a misplaced or foreign file).
    Stray {
        /// Where it is.
        path: PathBuf,
    },
}

/// A repository's link to a blob: `repositories/<repository>/_blobs/<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The repository, as its directory names it.
    pub repository: String,
    /// The blob it links, when the file's name is a digest.
    pub digest: Option<Digest>,
    /// The link file.
    pub path: PathBuf,
}

/// An entry under `uploads/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEntry {
    /// The temporary file of a write that has not (or never) finished.
    Temp {
        /// Where it is.
        path: PathBuf,
        /// How long since it was last written.
        age: Duration,
    },
    /// An upload session's directory.
    Session {
        /// Where it is.
        path: PathBuf,
        /// The repository it uploads to, when its `repository` file names one.
        repository: Option<RepositoryName>,
        /// Bytes received, when its `data` file exists.
        received: Option<u64>,
        /// How long since it was last written.
        age: Duration,
    },
    /// Anything else.
    Stray {
        /// Where it is.
        path: PathBuf,
        /// How long since it was last written.
        age: Duration,
    },
}

impl FsBlobStore {
    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file under `blobs/`, in path order.
    pub async fn blob_files(&self) -> Result<Vec<BlobFile>, StorageError> {
        let root = self.root.join("blobs/sha256");
        blocking(move || {
            let mut files = Vec::new();
            for path in walk(&root)? {
                let size = std::fs::symlink_metadata(&path)?.len();
                files.push(classify_blob(&root, path, size));
            }
            Ok(files)
        })
        .await
    }

    /// Every link of every repository, in path order.
    pub async fn links(&self) -> Result<Vec<Link>, StorageError> {
        let root = self.root.join("repositories");
        blocking(move || {
            let mut links = Vec::new();
            for path in walk(&root)? {
                let Some(dir) = path.parent().filter(|d| d.ends_with("_blobs")) else {
                    continue;
                };
                let repository = dir
                    .parent()
                    .and_then(|r| r.strip_prefix(&root).ok())
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let digest =
                    file_name(&path).and_then(|n| Digest::parse(&format!("sha256:{n}")).ok());
                links.push(Link {
                    repository,
                    digest,
                    path,
                });
            }
            Ok(links)
        })
        .await
    }

    /// Every entry directly under `uploads/`.
    pub async fn upload_entries(&self) -> Result<Vec<UploadEntry>, StorageError> {
        let root = self.root.join("uploads");
        blocking(move || {
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(&root)? {
                let path = entry?.path();
                entries.push(classify_upload(path)?);
            }
            entries.sort_by(|a, b| upload_path(a).cmp(upload_path(b)));
            Ok(entries)
        })
        .await
    }

    /// Moves a blob file aside into `quarantine/`, so that a push of the same content can store
    /// it afresh; returns where it went. Nothing is deleted: an operator can still look at it.
    pub async fn quarantine(&self, path: &Path) -> Result<PathBuf, StorageError> {
        let dir = self.root.join("quarantine");
        tokio::fs::create_dir_all(&dir).await?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = file_name(path).unwrap_or("blob");
        let target = dir.join(format!("{name}.{stamp}"));
        tokio::fs::rename(path, &target).await?;
        Ok(target)
    }

    /// Removes a leftover found by [`Self::upload_entries`] or [`Self::links`] (a file or a
    /// directory); a path outside the store is refused.
    pub async fn remove_leftover(&self, path: &Path) -> Result<(), StorageError> {
        if !path.starts_with(self.root.as_path()) {
            return Err(
                std::io::Error::other(format!("{} is outside the store", path.display())).into(),
            );
        }
        let result = if tokio::fs::symlink_metadata(path).await?.is_dir() {
            tokio::fs::remove_dir_all(path).await
        } else {
            tokio::fs::remove_file(path).await
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

/// A file under `blobs/sha256` is a blob when it sits at `<ab>/<abcdef…>` with a valid digest.
fn classify_blob(root: &Path, path: PathBuf, size: u64) -> BlobFile {
    let relative = path.strip_prefix(root).ok();
    let digest = relative
        .and_then(|r| r.to_str())
        .and_then(|r| r.split_once('/'))
        .filter(|(prefix, hex)| hex.len() == 64 && hex.starts_with(prefix) && prefix.len() == 2)
        .and_then(|(_, hex)| Digest::parse(&format!("sha256:{hex}")).ok());
    match digest {
        Some(digest) => BlobFile::Blob { digest, path, size },
        None => BlobFile::Stray { path },
    }
}

fn classify_upload(path: PathBuf) -> Result<UploadEntry, StorageError> {
    let meta = std::fs::symlink_metadata(&path)?;
    let name = file_name(&path).unwrap_or_default().to_owned();
    if meta.is_dir() && uuid::Uuid::parse_str(&name).is_ok() {
        let data = std::fs::metadata(path.join("data")).ok();
        let repository = std::fs::read_to_string(path.join("repository"))
            .ok()
            .and_then(|r| RepositoryName::parse(r.trim()).ok());
        // A session's age is its data's: appends touch only that file.
        let age = age_of(data.as_ref().unwrap_or(&meta));
        return Ok(UploadEntry::Session {
            repository,
            received: data.map(|d| d.len()),
            age,
            path,
        });
    }
    let age = age_of(&meta);
    if meta.is_file() && (name.starts_with(PUT_PREFIX) || name.starts_with(FETCH_PREFIX)) {
        Ok(UploadEntry::Temp { path, age })
    } else {
        Ok(UploadEntry::Stray { path, age })
    }
}

fn upload_path(entry: &UploadEntry) -> &Path {
    match entry {
        UploadEntry::Temp { path, .. }
        | UploadEntry::Session { path, .. }
        | UploadEntry::Stray { path, .. } => path,
    }
}

fn age_of(meta: &std::fs::Metadata) -> Duration {
    meta.modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .unwrap_or_default()
}

/// Every file below `dir` (not directories), sorted; an absent `dir` has none.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}
