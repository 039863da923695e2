//! The filesystem blob store.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::inventory::PUT_PREFIX;
use super::uploads::Sessions;
use super::{BlobReader, BlobStore, StorageError};
use crate::domain::ResourceName;
use crate::domain::oci::{Digest, RepositoryName};

/// Blobs, uploads and links under one directory.
#[derive(Clone)]
pub struct FsBlobStore {
    pub(super) root: Arc<PathBuf>,
    pub(super) sessions: Arc<Sessions>,
}

impl FsBlobStore {
    /// A store rooted at `root` (created when missing).
    pub fn new(root: &Path) -> Result<Self, StorageError> {
        for dir in ["blobs/sha256", "uploads", "repositories"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        Ok(Self {
            root: Arc::new(root.to_path_buf()),
            sessions: Arc::default(),
        })
    }

    /// Where a blob's bytes live.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("blobs/sha256").join(&hex[..2]).join(hex)
    }

    fn repository_dir(&self, repository: &RepositoryName) -> PathBuf {
        // Repository names are validated: components never are "." or "..".
        self.root.join("repositories").join(repository.as_str())
    }

    fn link_path(&self, repository: &RepositoryName, digest: &Digest) -> PathBuf {
        self.repository_dir(repository)
            .join("_blobs")
            .join(digest.hex())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn open(
        &self,
        digest: &Digest,
        start: u64,
        len: Option<u64>,
    ) -> Result<Option<BlobReader>, StorageError> {
        let mut file = match tokio::fs::File::open(self.blob_path(digest)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        let start = start.min(size);
        let len = len.unwrap_or(size - start).min(size - start);
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        Ok(Some(BlobReader {
            reader: Box::new(file.take(len)),
            len,
            size,
        }))
    }

    async fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StorageError> {
        use sha2::Digest as _;
        if Digest::from_sha256(&sha2::Sha256::digest(bytes)) != *digest {
            return Err(StorageError::DigestMismatch(digest.clone()));
        }
        let target = self.blob_path(digest);
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        let dir = target.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        let temp = self
            .root
            .join("uploads")
            .join(format!("{PUT_PREFIX}{}", uuid::Uuid::now_v7()));
        let mut file = tokio::fs::File::create(&temp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temp, &target).await?;
        // The push is recorded as an event next; the rename must be durable before it is.
        sync_dir(dir).await?;
        Ok(())
    }

    async fn read(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StorageError> {
        match tokio::fs::read(self.blob_path(digest)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn is_linked(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        Ok(tokio::fs::try_exists(self.link_path(repository, digest)).await?)
    }

    async fn link(&self, repository: &RepositoryName, digest: &Digest) -> Result<(), StorageError> {
        let path = self.link_path(repository, digest);
        let dir = path.parent().expect("link paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(&path, b"").await?;
        // A manifest push trusts the link next; it must outlive a power cut as the push does.
        sync_dir(dir).await?;
        Ok(())
    }

    async fn unlink(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        match tokio::fs::remove_file(self.link_path(repository, digest)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn unlink_all(&self, holder: &ResourceName) -> Result<(), StorageError> {
        // Names are validated: a holder is one path component, never "." or "..".
        let dir = self.root.join("repositories").join(holder.as_str());
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn linked_in_registry(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        let registry_dir = self
            .root
            .join("repositories")
            .join(repository.registry().as_str());
        let hex = digest.hex().to_owned();
        let found = tokio::task::spawn_blocking(move || find_link(&registry_dir, &hex))
            .await
            .map_err(std::io::Error::other)??;
        Ok(found)
    }
}

/// Makes the entries of `dir` (a rename or a new file in it) durable.
pub(super) async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// Looks for `_blobs/<hex>` anywhere below `dir`.
fn find_link(dir: &Path, hex: &str) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        if entry.file_name() == "_blobs" {
            if path.join(hex).exists() {
                return Ok(true);
            }
        } else if find_link(&path, hex)? {
            return Ok(true);
        }
    }
    Ok(false)
}
