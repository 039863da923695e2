//! Blob storage: content-addressed, verified, and streamed so memory stays flat whatever the
//! blob size. The filesystem store is the default; other backends (S3-compatible) come behind
//! the same [`BlobStore`] trait.
//!
//! Layout under the data directory:
//! ```text
//! blobs/sha256/<ab>/<abcdef…>              a blob's bytes; one copy per digest, never changed
//! uploads/<upload id>/data                  the bytes of an upload so far
//! uploads/<upload id>/repository            the repository the upload pushes to
//! repositories/<registry>/<path>/_blobs/<abcdef…>   empty: the repository links that blob
//! quarantine/<abcdef…>.<unix time>          a blob `berth fsck --repair` found corrupt
//! .lock                                     shared by running servers, exclusive for a repair
//! ```
//! A blob becomes visible only by an atomic rename after its bytes hash to its digest, so a
//! half-finished or corrupt upload is never served. Links make one stored copy appear in many
//! repositories. This module may depend on the domain's value types and on nothing above it.

mod fs;
mod inventory;
mod lock;
mod uploads;
mod writer;

use async_trait::async_trait;
use tokio::io::AsyncRead;

pub use fs::FsBlobStore;
pub use inventory::{BlobFile, Link, UploadEntry};
pub use lock::{DirLock, LockError};
pub use uploads::{ABANDONED_UPLOAD_AGE, UploadError, UploadId, UploadStatus};
pub use writer::BlobWriter;

use crate::domain::ResourceName;
use crate::domain::oci::{Digest, RepositoryName};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Reading or writing the disk failed.
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Content does not hash to the digest it was offered under.
    #[error("content does not match digest {0}")]
    DigestMismatch(Digest),
}

/// An open blob, ready to stream.
pub struct BlobReader {
    /// The bytes (positioned at the start of the requested range).
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// How many bytes the reader yields.
    pub len: u64,
    /// The blob's whole size.
    pub size: u64,
}

/// Content-addressed blob storage with per-repository links.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of a stored blob, if it is stored.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError>;

    /// Opens a stored blob, from `start` for `len` bytes (the rest when `None`).
    async fn open(
        &self,
        digest: &Digest,
        start: u64,
        len: Option<u64>,
    ) -> Result<Option<BlobReader>, StorageError>;

    /// Stores small content whole (a manifest) after checking that it hashes to `digest`.
    async fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StorageError>;

    /// Reads small content whole (a manifest).
    async fn read(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StorageError>;

    /// Whether `repository` links `digest`.
    async fn is_linked(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError>;

    /// Links a stored blob into `repository`.
    async fn link(&self, repository: &RepositoryName, digest: &Digest) -> Result<(), StorageError>;

    /// Removes `repository`'s link to `digest`; true if there was one.
    async fn unlink(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError>;

    /// Removes every link of the repositories of `holder`, a deleted registry or upstream
    /// proxy. The blobs stay: other repositories may link them.
    async fn unlink_all(&self, holder: &ResourceName) -> Result<(), StorageError>;

    /// Whether any repository of the same registry as `repository` links `digest`.
    async fn linked_in_registry(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError>;
}
#[cfg(test)]
mod tests;
