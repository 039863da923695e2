//! Writing a blob from a stream whose digest is known in advance (a pull-through fetch): the
//! bytes go to a temporary file while they are hashed, and the blob appears under its digest
//! only when they match. Dropped or mismatched, the temporary file is removed; nothing partial
//! is ever served.

use std::path::PathBuf;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::fs::sync_dir;
use super::inventory::FETCH_PREFIX;
use super::{FsBlobStore, StorageError};
use crate::domain::oci::Digest;

/// A blob being written.
pub struct BlobWriter {
    store: FsBlobStore,
    expected: Digest,
    temp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    written: u64,
}

impl FsBlobStore {
    /// Starts writing the blob `expected`.
    pub async fn writer(&self, expected: &Digest) -> Result<BlobWriter, StorageError> {
        let temp = self
            .root
            .join("uploads")
            .join(format!("{FETCH_PREFIX}{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::File::create(&temp).await?;
        Ok(BlobWriter {
            store: self.clone(),
            expected: expected.clone(),
            temp,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
        })
    }
}

impl BlobWriter {
    /// Appends `chunk`; once this returns, readers of [`Self::temp_path`] see it.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        if let Some(file) = &mut self.file {
            file.write_all(chunk).await?;
            file.flush().await?;
        }
        self.hasher.update(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// The temporary file the bytes go to (renamed into place by [`Self::commit`]).
    pub fn temp_path(&self) -> &std::path::Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the blob visible under its digest if the bytes hash to it; otherwise discards them.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        let actual = Digest::from_sha256(&std::mem::take(&mut self.hasher).finalize());
        if actual != self.expected {
            return Err(StorageError::DigestMismatch(self.expected.clone()));
        }
        let mut file = self.file.take().expect("a writer commits once");
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let target = self.store.blob_path(&self.expected);
        let dir = target.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(&self.temp, &target).await?;
        // The fetched manifest or blob is recorded next; the rename must be durable first.
        sync_dir(dir).await?;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a commit the file has been renamed and this finds nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}
