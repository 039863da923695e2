//! Writing a blob from a stream whose digest is known in advance (a pull-through fetch): the
//! bytes go to a temporary file while they are hashed, and the blob appears under its digest
//! only when they match. Dropped or mismatched, the temporary file is removed; nothing partial
//! is ever served. Bytes are taken in batches, each hashed and written by one call on the
//! blocking pool, so that a fast remote costs a few large writes rather than one round trip per
//! small chunk.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::fs::sync_dir;
use super::inventory::FETCH_PREFIX;
use super::{FsBlobStore, StorageError};
use crate::domain::oci::Digest;

/// The open file and the hash of what it holds, moved to the blocking pool for each batch.
struct Open {
    file: std::fs::File,
    hasher: Sha256,
}

/// A blob being written.
pub struct BlobWriter {
    store: FsBlobStore,
    expected: Digest,
    temp: PathBuf,
    open: Option<Open>,
    verified: bool,
    written: u64,
}

impl FsBlobStore {
    /// Starts writing the blob `expected`.
    pub async fn writer(&self, expected: &Digest) -> Result<BlobWriter, StorageError> {
        let temp = self
            .root
            .join("uploads")
            .join(format!("{FETCH_PREFIX}{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::File::create(&temp).await?.into_std().await;
        Ok(BlobWriter {
            store: self.clone(),
            expected: expected.clone(),
            temp,
            open: Some(Open {
                file,
                hasher: Sha256::new(),
            }),
            verified: false,
            written: 0,
        })
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> StorageError {
    StorageError::Io(std::io::Error::other(e))
}

impl BlobWriter {
    /// Hashes and appends `chunks` in one call on the blocking pool; once this returns, readers
    /// of [`Self::temp_path`] see them.
    pub async fn write(&mut self, chunks: Vec<Bytes>) -> Result<(), StorageError> {
        let Some(mut open) = self.open.take() else {
            return Err(StorageError::Io(std::io::Error::other(
                "the writer already failed",
            )));
        };
        let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let (open, written) = tokio::task::spawn_blocking(move || {
            let written = chunks.iter().try_for_each(|chunk| {
                open.hasher.update(chunk);
                open.file.write_all(chunk)
            });
            (open, written)
        })
        .await
        .map_err(blocking_failed)?;
        written?;
        self.open = Some(open);
        self.written += len;
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

    /// Checks that everything written hashes to the expected digest. Once it does, the bytes
    /// may be served whole, before [`Self::commit`] makes them durable.
    pub fn verify(&mut self) -> Result<(), StorageError> {
        let open = self.open.as_mut().expect("a writer verifies once");
        let actual = Digest::from_sha256(&std::mem::take(&mut open.hasher).finalize());
        if actual != self.expected {
            return Err(StorageError::DigestMismatch(self.expected.clone()));
        }
        self.verified = true;
        Ok(())
    }

    /// Makes the verified blob visible under its digest, durably.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        if !self.verified {
            self.verify()?;
        }
        let open = self.open.take().expect("a writer commits once");
        let target = self.store.blob_path(&self.expected);
        let temp = self.temp.clone();
        let dir = target
            .parent()
            .expect("blob paths have a parent")
            .to_owned();
        let made = dir.clone();
        tokio::task::spawn_blocking(move || {
            open.file.sync_all()?;
            drop(open);
            std::fs::create_dir_all(&made)?;
            std::fs::rename(&temp, &target)
        })
        .await
        .map_err(blocking_failed)??;
        // The fetched manifest or blob is recorded next; the rename must be durable first.
        sync_dir(&dir).await?;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a commit the file has been renamed and this finds nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}
