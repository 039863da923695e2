//! Upload sessions: bytes stream to a file while they are hashed; the blob appears only after
//! its digest checks out. Sessions live on disk, so an upload survives a restart and can be
//! resumed; the running hash is kept in memory and rebuilt from the file after a restart.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::{BlobStore, FsBlobStore, StorageError};
use crate::domain::ResourceName;
use crate::domain::oci::{Digest, RepositoryName};

/// How much is read from a client at a time.
const CHUNK: usize = 256 * 1024;

/// The most uploads one repository may have open at once.
pub const MAX_OPEN_UPLOADS: usize = 64;

/// How long an upload may stay untouched before it is taken for abandoned and swept.
pub const ABANDONED_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// An upload untouched this long no longer counts against its repository's open uploads.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// An upload session's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(pub Uuid);

impl UploadId {
    /// Parses an id from a URL.
    pub fn parse(value: &str) -> Option<Self> {
        Uuid::parse_str(value).ok().map(Self)
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    /// Bytes received so far.
    pub offset: u64,
}

/// Why an upload step failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such upload in this repository.
    #[error("upload unknown")]
    Unknown,
    /// A chunk that does not start where the upload stands.
    #[error("chunk starts at {got}, but the upload is at {expected}")]
    OutOfOrder {
        /// The upload's offset.
        expected: u64,
        /// Where the chunk claims to start.
        got: u64,
    },
    /// The bytes do not hash to the digest the client named.
    #[error("the uploaded bytes hash to {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client named.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Reading the request body failed (the client went away).
    #[error("reading the upload failed: {0}")]
    Body(std::io::Error),
    /// The repository has as many uploads open as it may.
    #[error(
        "{repository} has {limit} uploads open; finish or cancel some (or wait an hour for abandoned ones to lapse)"
    )]
    TooMany {
        /// The repository.
        repository: String,
        /// The limit.
        limit: usize,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<std::io::Error> for UploadError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(StorageError::Io(e))
    }
}

struct Session {
    repository: RepositoryName,
    offset: u64,
    hasher: Sha256,
}

/// Sessions in memory, each behind its own lock so one upload takes one request at a time,
/// and when each was last touched, by repository, for the cap on open uploads.
#[derive(Default)]
pub struct Sessions {
    slots: std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    touched: std::sync::Mutex<HashMap<Uuid, (String, std::time::Instant)>>,
}

impl Sessions {
    fn slot(&self, id: UploadId) -> Arc<tokio::sync::Mutex<Option<Session>>> {
        self.slots
            .lock()
            .expect("sessions lock")
            .entry(id.0)
            .or_default()
            .clone()
    }

    /// Counts a new upload of `repository`, unless it has too many open.
    fn open(&self, id: UploadId, repository: &RepositoryName) -> Result<(), UploadError> {
        let mut touched = self.touched.lock().expect("sessions lock");
        let open = touched
            .values()
            .filter(|(r, at)| r == repository.as_str() && at.elapsed() < ABANDONED_AFTER)
            .count();
        if open >= MAX_OPEN_UPLOADS {
            return Err(UploadError::TooMany {
                repository: repository.to_string(),
                limit: MAX_OPEN_UPLOADS,
            });
        }
        touched.insert(id.0, (repository.to_string(), std::time::Instant::now()));
        Ok(())
    }

    fn touch(&self, id: UploadId, repository: &RepositoryName) {
        self.touched
            .lock()
            .expect("sessions lock")
            .insert(id.0, (repository.to_string(), std::time::Instant::now()));
    }

    fn forget(&self, id: UploadId) {
        self.slots.lock().expect("sessions lock").remove(&id.0);
        self.touched.lock().expect("sessions lock").remove(&id.0);
    }
}

impl FsBlobStore {
    fn upload_dir(&self, id: UploadId) -> PathBuf {
        self.root.join("uploads").join(id.0.to_string())
    }

    /// Starts an upload to `repository`.
    pub async fn start_upload(&self, repository: &RepositoryName) -> Result<UploadId, UploadError> {
        let id = UploadId(Uuid::now_v7());
        self.sessions.open(id, repository)?;
        let dir = self.upload_dir(id);
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("data"), b"").await?;
        tokio::fs::write(dir.join("repository"), repository.as_str()).await?;
        *self.sessions.slot(id).lock().await = Some(Session {
            repository: repository.clone(),
            offset: 0,
            hasher: Sha256::new(),
        });
        Ok(id)
    }

    /// Loads a session from disk when this process has not seen it (e.g. after a restart).
    async fn load(&self, id: UploadId) -> Result<Option<Session>, UploadError> {
        let dir = self.upload_dir(id);
        let repository = match tokio::fs::read_to_string(dir.join("repository")).await {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Ok(repository) = RepositoryName::parse(repository.trim()) else {
            return Ok(None);
        };
        let mut file = match tokio::fs::File::open(dir.join("data")).await {
            Ok(file) => file,
            // A crash after a finished upload's data was renamed into the blob store, before
            // its directory went, leaves the directory without data: the upload is over, and
            // the client must hear "unknown" (and start again), not a server error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            offset += n as u64;
        }
        Ok(Some(Session {
            repository,
            offset,
            hasher,
        }))
    }

    async fn with_session<R>(
        &self,
        repository: &RepositoryName,
        id: UploadId,
        f: impl AsyncFnOnce(&mut Session) -> Result<R, UploadError>,
    ) -> Result<R, UploadError> {
        let slot = self.sessions.slot(id);
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = self.load(id).await?;
        }
        let result = match guard.as_mut() {
            Some(session) if session.repository == *repository => {
                self.sessions.touch(id, repository);
                f(session).await
            }
            _ => Err(UploadError::Unknown),
        };
        if matches!(result, Err(UploadError::Storage(_))) {
            // The file and the running hash may disagree now; rebuild from disk next time.
            *guard = None;
        } else if matches!(result, Err(UploadError::Unknown))
            && guard.is_some()
            && !tokio::fs::try_exists(self.upload_dir(id))
                .await
                .unwrap_or(true)
        {
            // Its files went while it was held here: it was cancelled elsewhere.
            *guard = None;
            self.sessions.forget(id);
        }
        result
    }

    /// Where the upload stands.
    pub async fn upload_status(
        &self,
        repository: &RepositoryName,
        id: UploadId,
    ) -> Result<UploadStatus, UploadError> {
        self.with_session(repository, id, async |s| {
            Ok(UploadStatus { offset: s.offset })
        })
        .await
    }

    /// Appends a chunk; `start`, when given, must be where the upload stands.
    pub async fn append_upload(
        &self,
        repository: &RepositoryName,
        id: UploadId,
        start: Option<u64>,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<UploadStatus, UploadError> {
        let path = self.upload_dir(id).join("data");
        self.with_session(repository, id, async |session| {
            if let Some(start) = start
                && start != session.offset
            {
                return Err(UploadError::OutOfOrder {
                    expected: session.offset,
                    got: start,
                });
            }
            write_chunk(&path, session, body).await?;
            Ok(UploadStatus {
                offset: session.offset,
            })
        })
        .await
    }

    /// Appends a last chunk (if any), checks the digest, and makes the blob visible and linked
    /// in the repository. A mismatch discards the upload. Returns the blob's size.
    pub async fn finish_upload(
        &self,
        repository: &RepositoryName,
        id: UploadId,
        body: Option<&mut (dyn AsyncRead + Send + Unpin)>,
        expected: &Digest,
    ) -> Result<u64, UploadError> {
        let dir = self.upload_dir(id);
        let path = dir.join("data");
        let outcome = self
            .with_session(repository, id, async |session| {
                if let Some(body) = body {
                    write_chunk(&path, session, body).await?;
                }
                let actual = Digest::from_sha256(&session.hasher.clone().finalize());
                Ok((actual, session.offset))
            })
            .await;
        let (actual, size) = match outcome {
            Ok(done) => done,
            Err(UploadError::Body(e)) => return Err(UploadError::Body(e)),
            Err(e) => return Err(e),
        };
        if actual != *expected {
            self.discard(id).await?;
            return Err(UploadError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let target = self.blob_path(expected);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::try_exists(&target).await? {
            // Already stored: content-addressed, so this copy is the same bytes.
        } else {
            let gone = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::NotFound => UploadError::Unknown,
                _ => e.into(),
            };
            tokio::fs::File::open(&path)
                .await
                .map_err(gone)?
                .sync_all()
                .await?;
            tokio::fs::rename(&path, &target).await.map_err(gone)?;
            if let Some(parent) = target.parent() {
                super::fs::sync_dir(parent).await?;
            }
        }
        self.discard(id).await?;
        self.link(repository, expected).await?;
        Ok(size)
    }

    /// Cancels an upload and deletes what it received.
    pub async fn cancel_upload(
        &self,
        repository: &RepositoryName,
        id: UploadId,
    ) -> Result<(), UploadError> {
        self.with_session(repository, id, async |_| Ok(())).await?;
        self.discard(id).await?;
        Ok(())
    }

    /// Removes uploads untouched for `older_than` and temporary files of writes that never
    /// finished (a crash mid-write leaves them); returns how many went.
    pub async fn sweep(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let file_type = entry.file_type().await?;
            // A session's age is its data's; a temporary file's its own.
            let probe = if file_type.is_dir() {
                path.join("data")
            } else {
                path.clone()
            };
            let modified = match tokio::fs::metadata(&probe).await {
                Ok(meta) => meta.modified()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    entry.metadata().await?.modified()?
                }
                Err(e) => return Err(e.into()),
            };
            if modified.elapsed().unwrap_or_default() < older_than {
                continue;
            }
            if file_type.is_dir() {
                if let Some(id) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(UploadId::parse)
                {
                    self.sessions.forget(id);
                }
                tokio::fs::remove_dir_all(&path).await?;
            } else {
                tokio::fs::remove_file(&path).await?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Cancels every upload to a repository of `holder`, a deleted registry or upstream proxy,
    /// so that none can finish in one created again under the name; returns how many.
    pub async fn cancel_uploads_of(&self, holder: &ResourceName) -> Result<usize, StorageError> {
        let prefix = format!("{holder}/");
        let mut cancelled = 0;
        let mut entries = tokio::fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Some(id) = entry.file_name().to_str().and_then(UploadId::parse) else {
                continue;
            };
            let named = match tokio::fs::read_to_string(entry.path().join("repository")).await {
                Ok(named) => named,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if named.trim().starts_with(&prefix) {
                self.sessions.forget(id);
                match tokio::fs::remove_dir_all(entry.path()).await {
                    Ok(()) => cancelled += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(cancelled)
    }

    async fn discard(&self, id: UploadId) -> Result<(), UploadError> {
        self.sessions.forget(id);
        match tokio::fs::remove_dir_all(self.upload_dir(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Streams `body` onto the end of the upload's file, hashing it on the way.
async fn write_chunk(
    path: &std::path::Path,
    session: &mut Session,
    body: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<(), UploadError> {
    let mut file = match tokio::fs::OpenOptions::new().append(true).open(path).await {
        Ok(file) => file,
        // Cancelled meanwhile (by another instance, or with its registry).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(UploadError::Unknown),
        Err(e) => return Err(e.into()),
    };
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = match body.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                file.flush().await?;
                return Err(UploadError::Body(e));
            }
        };
        file.write_all(&buffer[..n]).await?;
        session.hasher.update(&buffer[..n]);
        session.offset += n as u64;
    }
    file.flush().await?;
    Ok(())
}
