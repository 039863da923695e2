//! Single flight for blobs: however many clients ask for the same missing blob at once, one
//! fetch goes to the remote. The fetch writes to a temporary file; every client (the one that
//! started it included) reads that file as it grows, so all get the bytes as they arrive. The
//! last byte is released only once the whole blob hashed to its digest; a failed fetch ends
//! every reader with an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use crate::domain::oci::Digest;

/// How much a reader takes from the file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Where a fetch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The request to the remote is on its way.
    Starting,
    /// Bytes are arriving in `temp`.
    Streaming {
        /// The temporary file.
        temp: PathBuf,
        /// The size the remote announced.
        size: Option<u64>,
    },
    /// The remote does not have the blob.
    Missing,
    /// The blob is stored under its digest.
    Stored,
    /// The fetch failed.
    Failed(String),
}

/// A fetch's progress, as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Where it stands.
    pub phase: Phase,
    /// Bytes written to the temporary file so far.
    pub written: u64,
    /// Whether the fetch has ended (stored, missing or failed).
    pub done: bool,
}

/// One fetch in flight.
pub struct Flight {
    progress: watch::Sender<Progress>,
}

impl Flight {
    /// Follows the fetch.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Updates the fetch's progress.
    pub fn update(&self, change: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(change);
    }
}

/// The fetches in flight, by digest.
#[derive(Default, Clone)]
pub struct Flights {
    map: Arc<Mutex<HashMap<Digest, Arc<Flight>>>>,
}

impl Flights {
    /// Joins the fetch of `digest`, or registers a new one: `(flight, true)` when the caller
    /// must run it.
    pub fn join(&self, digest: &Digest) -> (Arc<Flight>, bool) {
        let mut map = self.map.lock().expect("flight map");
        if let Some(flight) = map.get(digest) {
            return (flight.clone(), false);
        }
        let (progress, _) = watch::channel(Progress {
            phase: Phase::Starting,
            written: 0,
            done: false,
        });
        let flight = Arc::new(Flight { progress });
        map.insert(digest.clone(), flight.clone());
        (flight, true)
    }

    /// Ends the fetch of `digest` with `phase`: later requests start afresh (or find it stored).
    pub fn finish(&self, digest: &Digest, flight: &Flight, phase: Phase) {
        self.map.lock().expect("flight map").remove(digest);
        flight.update(|p| {
            p.phase = phase;
            p.done = true;
        });
    }
}

/// Waits until the fetch is past its start.
pub async fn started(progress: &mut watch::Receiver<Progress>) -> Progress {
    loop {
        let current = progress.borrow_and_update().clone();
        if current.phase != Phase::Starting || current.done {
            return current;
        }
        if progress.changed().await.is_err() {
            return progress.borrow().clone();
        }
    }
}

/// The bytes of a streaming fetch as they arrive, read from `temp` (or from `stored`, where
/// the blob is once it checked out, for a reader that comes late).
pub fn read(
    temp: PathBuf,
    stored: PathBuf,
    progress: watch::Receiver<Progress>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct Reader {
        temp: PathBuf,
        stored: PathBuf,
        file: Option<tokio::fs::File>,
        progress: watch::Receiver<Progress>,
        delivered: u64,
        ended: bool,
    }
    let reader = Reader {
        temp,
        stored,
        file: None,
        progress,
        delivered: 0,
        ended: false,
    };
    futures_util::stream::unfold(reader, |mut reader| async move {
        if reader.ended {
            return None;
        }
        loop {
            let current = reader.progress.borrow_and_update().clone();
            if let Phase::Failed(reason) = &current.phase {
                reader.ended = true;
                return Some((Err(std::io::Error::other(reason.clone())), reader));
            }
            // The last byte waits until the digest checked out.
            let stored = current.phase == Phase::Stored;
            let deliverable = if stored {
                current.written
            } else {
                current.written.saturating_sub(1)
            };
            if reader.delivered < deliverable {
                if reader.file.is_none() {
                    // Opened once: the handle keeps reading after the file is renamed.
                    // A commit may have renamed the file since this reader looked: then the
                    // blob is where verified blobs live.
                    let opened = match tokio::fs::File::open(&reader.temp).await {
                        Err(_) => tokio::fs::File::open(&reader.stored).await,
                        other => other,
                    };
                    match opened {
                        Ok(mut file) => {
                            if let Err(e) =
                                file.seek(std::io::SeekFrom::Start(reader.delivered)).await
                            {
                                return Some((Err(e), reader));
                            }
                            reader.file = Some(file);
                        }
                        Err(e) => return Some((Err(e), reader)),
                    }
                }
                let want = (deliverable - reader.delivered).min(READ_CHUNK as u64) as usize;
                let mut buffer = vec![0u8; want];
                let file = reader.file.as_mut().expect("opened above");
                return match file.read_exact(&mut buffer).await {
                    Ok(_) => {
                        reader.delivered += want as u64;
                        Some((Ok(Bytes::from(buffer)), reader))
                    }
                    Err(e) => Some((Err(e), reader)),
                };
            }
            if current.done {
                return None;
            }
            if reader.progress.changed().await.is_err() {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn readers_get_all_but_the_last_byte_until_the_blob_is_stored_even_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, stored) = (dir.path().join("temp"), dir.path().join("stored"));
        std::fs::write(&temp, b"hello").unwrap();
        let (progress, receiver) = watch::channel(Progress {
            phase: Phase::Streaming {
                temp: temp.clone(),
                size: Some(5),
            },
            written: 5,
            done: false,
        });
        // The commit renamed the file before the reader first opened it.
        std::fs::rename(&temp, &stored).unwrap();
        let mut stream = Box::pin(read(temp, stored, receiver));
        assert_eq!(stream.next().await.unwrap().unwrap().as_ref(), b"hell");
        let last = tokio::spawn(async move {
            let rest: Vec<_> = stream.collect().await;
            rest.into_iter().map(Result::unwrap).collect::<Vec<_>>()
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!last.is_finished(), "the last byte waits for the digest");
        progress.send_modify(|p| {
            p.phase = Phase::Stored;
            p.done = true;
        });
        assert_eq!(last.await.unwrap(), vec![Bytes::from_static(b"o")]);
    }

    #[tokio::test]
    async fn a_failed_fetch_ends_every_reader_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("temp");
        std::fs::write(&temp, b"partial").unwrap();
        let (progress, receiver) = watch::channel(Progress {
            phase: Phase::Streaming {
                temp: temp.clone(),
                size: Some(100),
            },
            written: 7,
            done: false,
        });
        let mut stream = Box::pin(read(temp, dir.path().join("stored"), receiver));
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 6);
        progress.send_modify(|p| {
            p.phase = Phase::Failed("the transfer broke off".into());
            p.done = true;
        });
        let error = stream.next().await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "the transfer broke off");
        assert!(stream.next().await.is_none());
    }
}
