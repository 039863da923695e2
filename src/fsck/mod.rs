//! Consistency checks behind `berth fsck`: the read models agree with the event log, every
//! blob hashes to its name, every manifest the read models know has its bytes and its
//! references, every link points at a stored blob, and what lies under `uploads/` is either
//! a resumable session or a leftover. With `repair`, what can be fixed safely is fixed, each
//! fix reported beside its finding.
//!
//! The check only reads, so it is safe while servers run; writes in flight are told from
//! leftovers by age ([`Options::grace`]) and by looking again before reporting. Repairs go
//! through the same paths the server uses: corrupt blobs are moved to quarantine, never
//! deleted; manifests whose bytes are gone are deleted through the repository aggregate, as
//! events by the actor [`ACTOR`]; read models are rebuilt from the log.
//!
//! This module may depend on `app`, `storage`, `projections`, `event_store` and the domain;
//! nothing but the CLI depends on it.

mod blobs;
mod log;
mod references;
mod report;
mod uploads;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use report::render_text;

use crate::app::{App, AppError};
use crate::domain::oci::Digest;
use crate::event_store::{Backend, StoreError};
use crate::secrets::SecretBox;
use crate::storage::{BlobStore, FsBlobStore, StorageError};

/// The actor recorded on the events a repair appends.
pub const ACTOR: &str = "fsck";

/// Progress of a long step: `(what, done, total)`.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Send + Sync);

/// How a check runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fix what can be fixed safely.
    pub repair: bool,
    /// Temporary files and upload sessions younger than this are taken for writes in flight.
    pub grace: Duration,
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A read model disagrees with the event log.
    ReadModelMismatch,
    /// A blob's bytes do not hash to its name.
    CorruptBlob,
    /// A file that does not belong where it lies.
    StrayFile,
    /// The temporary file of a write that never finished.
    TempFile,
    /// A manifest the read model holds whose bytes are not stored.
    MissingManifestBlob,
    /// A tag pointing at a manifest that is missing.
    DanglingTag,
    /// Stored manifest bytes that do not parse as the recorded media type.
    UnreadableManifest,
    /// A blob a manifest references is not stored.
    MissingBlob,
    /// A blob a manifest references is stored but its repository does not link it.
    MissingLink,
    /// A manifest an index references is not in the repository.
    MissingChildManifest,
    /// A repository links a blob that is not stored.
    DanglingLink,
    /// An upload session that cannot be resumed (a file of it is missing).
    DeadUpload,
    /// An upload session untouched for longer than uploads are kept.
    AbandonedUpload,
    /// An intact upload session, resumable where it stands: a note, not a problem.
    OpenUpload,
}

impl Kind {
    /// Whether this kind is a problem (every kind but a note on an open upload).
    pub fn is_problem(self) -> bool {
        self != Self::OpenUpload
    }
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of thing.
    pub kind: Kind,
    /// What it concerns: a digest, `repository@digest`, `repository:tag`, a path or a table.
    pub object: String,
    /// What is wrong, in a sentence.
    pub detail: String,
    /// What the repair did about it, when it did something.
    pub repaired: Option<String>,
}

/// What was looked at.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Events read from the log.
    pub events: u64,
    /// Blob files hashed.
    pub blobs: u64,
    /// Bytes hashed.
    pub blob_bytes: u64,
    /// Manifests the read models hold.
    pub manifests: u64,
    /// Tags the read models hold.
    pub tags: u64,
    /// Repository links.
    pub links: u64,
    /// Entries under `uploads/` (sessions and temporary files).
    pub uploads: u64,
    /// How long the check took.
    pub seconds: f64,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Everything found, in the order the checks ran.
    pub findings: Vec<Finding>,
    /// What was looked at.
    pub summary: Summary,
}

impl Report {
    /// Problems found and not repaired.
    pub fn problems_left(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.kind.is_problem() && f.repaired.is_none())
            .count()
    }

    /// Problems repaired.
    pub fn repaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.repaired.is_some())
            .count()
    }

    fn found(&mut self, kind: Kind, object: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            object: object.into(),
            detail: detail.into(),
            repaired: None,
        });
    }

    /// Marks the newest finding as repaired.
    fn repaired_last(&mut self, how: impl Into<String>) {
        if let Some(last) = self.findings.last_mut() {
            last.repaired = Some(how.into());
        }
    }
}

/// Why a check could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// The event log or a read model could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storage could not be read (or a repair could not change it).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A repair through the domain failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The data directory does not look like Berth's.
    #[error("{0} holds no blobs/sha256 directory: is it Berth's data directory?")]
    NotADataDir(String),
}

/// One run of the checks.
struct Run<'a> {
    backend: &'a Backend,
    blobs: &'a FsBlobStore,
    app: App,
    options: &'a Options,
    progress: Progress<'a>,
    report: Report,
}

impl Run<'_> {
    /// A path inside the data directory, as a report names it.
    fn relative(&self, path: &std::path::Path) -> String {
        path.strip_prefix(self.blobs.root())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Whether `digest` is stored: hashed intact by this run, or written since it listed blobs.
    async fn stored(&self, present: &HashSet<Digest>, digest: &Digest) -> Result<bool, FsckError> {
        Ok(present.contains(digest) || self.blobs.stat(digest).await?.is_some())
    }
}

/// Refuses a directory that is not Berth's data directory, before anything opens (and so
/// creates) a store in it.
pub fn ensure_data_dir(dir: &std::path::Path) -> Result<(), FsckError> {
    if dir.join("blobs/sha256").is_dir() {
        Ok(())
    } else {
        Err(FsckError::NotADataDir(dir.display().to_string()))
    }
}

/// Runs every check over the store at `blobs` and the log in `backend`, repairing when asked.
pub async fn run(
    backend: &Backend,
    blobs: &FsBlobStore,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Report, FsckError> {
    ensure_data_dir(blobs.root())?;
    let started = Instant::now();
    let mut run = Run {
        backend,
        blobs,
        app: App::new(backend.clone(), SecretBox::ephemeral()),
        options,
        progress,
        report: Report::default(),
    };
    // The read models come first: every later check trusts them.
    log::check(&mut run).await?;
    let present = blobs::check(&mut run).await?;
    references::check(&mut run, &present).await?;
    blobs::check_links(&mut run, &present).await?;
    uploads::check(&mut run).await?;
    run.report.summary.seconds = started.elapsed().as_secs_f64();
    Ok(run.report)
}
