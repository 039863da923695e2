//! Single flight for blobs: however many clients ask for the same missing blob at once, one
//! fetch goes to the remote, and every client gets the bytes as they arrive.
//!
//! The fetch hands each chunk it receives to the readers straight from memory: the flight keeps
//! a window of the latest chunks (shared [`Bytes`], never copied), and a reader that keeps up
//! takes its bytes from there. The same chunks go to a sink that hashes them and writes them to
//! a temporary file in large batches, off the async threads. A reader that joined late, or fell
//! behind the window, reads the file until it catches up, so memory stays bounded however slow
//! a reader is: the window only lets go of chunks that are in the file.
//!
//! The last byte is released only once the whole blob hashed to its digest; a failed fetch
//! ends every reader with an error, so a broken transfer reaches no client whole.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use crate::domain::oci::Digest;

/// How much a reader takes from the file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// How many bytes of the latest chunks stay in memory for the readers that keep up.
pub const WINDOW_BYTES: u64 = 8 * 1024 * 1024;

/// Where a fetch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The request to the remote is on its way.
    Starting,
    /// Bytes are arriving; the sink writes them to `temp`.
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
    /// Bytes received from the remote so far.
    pub received: u64,
    /// Bytes written to the temporary file so far.
    pub on_disk: u64,
    /// Whether the whole blob hashed to its digest: its last byte may go out.
    pub verified: bool,
    /// Whether the fetch has ended (stored, missing or failed).
    pub done: bool,
}

/// The latest chunks received, from offset `start` on.
#[derive(Default)]
struct Window {
    start: u64,
    chunks: VecDeque<Bytes>,
    bytes: u64,
}

/// One fetch in flight.
pub struct Flight {
    progress: watch::Sender<Progress>,
    window: Mutex<Window>,
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

    /// Hands a chunk received from the remote to the readers.
    pub fn received(&self, chunk: Bytes) {
        let len = chunk.len() as u64;
        {
            let mut window = self.window.lock().expect("flight window");
            window.bytes += len;
            window.chunks.push_back(chunk);
        }
        self.update(|p| p.received += len);
    }

    /// Records that the sink wrote `len` more bytes to the file, and lets go of the chunks the
    /// window no longer needs to hold.
    pub fn written(&self, len: u64) {
        let mut on_disk = 0;
        self.update(|p| {
            p.on_disk += len;
            on_disk = p.on_disk;
        });
        let mut window = self.window.lock().expect("flight window");
        while window.bytes > WINDOW_BYTES {
            let Some(front) = window.chunks.front() else {
                break;
            };
            let end = window.start + front.len() as u64;
            if end > on_disk {
                break;
            }
            window.bytes -= front.len() as u64;
            window.start = end;
            window.chunks.pop_front();
        }
    }

    /// The bytes from `offset` up to at most `end` that the window holds: one chunk's worth.
    fn window_bytes(&self, offset: u64, end: u64) -> Option<Bytes> {
        let window = self.window.lock().expect("flight window");
        if offset < window.start {
            return None;
        }
        let mut at = window.start;
        for chunk in &window.chunks {
            let next = at + chunk.len() as u64;
            if offset < next {
                let from = (offset - at) as usize;
                let to = (end.min(next) - at) as usize;
                return (from < to).then(|| chunk.slice(from..to));
            }
            at = next;
        }
        None
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
            received: 0,
            on_disk: 0,
            verified: false,
            done: false,
        });
        let flight = Arc::new(Flight {
            progress,
            window: Mutex::default(),
        });
        map.insert(digest.clone(), flight.clone());
        (flight, true)
    }

    /// Ends the fetch of `digest` with `phase`: later requests start afresh (or find it stored).
    /// The window lets go of its chunks: a reader still at work reads the stored blob.
    pub fn finish(&self, digest: &Digest, flight: &Flight, phase: Phase) {
        {
            let mut map = self.map.lock().expect("flight map");
            // Only this fetch's entry: a fetch ended early may have been replaced already.
            if map
                .get(digest)
                .is_some_and(|f| std::ptr::eq(f.as_ref(), flight))
            {
                map.remove(digest);
            }
        }
        flight.update(|p| {
            p.phase = phase;
            p.done = true;
        });
        let mut window = flight.window.lock().expect("flight window");
        window.start += window.bytes;
        window.chunks.clear();
        window.bytes = 0;
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

/// What a reader needs of the progress it last saw.
struct Seen {
    received: u64,
    on_disk: u64,
    verified: bool,
    done: bool,
}

/// A reader of one streaming fetch.
struct Reader {
    flight: Arc<Flight>,
    progress: watch::Receiver<Progress>,
    temp: PathBuf,
    stored: PathBuf,
    file: Option<tokio::fs::File>,
    /// Where the open file stands; the reader seeks when it comes back to the file.
    file_offset: u64,
    delivered: u64,
    ended: bool,
}

impl Reader {
    /// The next bytes from `delivered` up to `end`, from the file; `on_disk` bytes are there.
    async fn file_bytes(&mut self, end: u64) -> std::io::Result<Bytes> {
        if self.file.is_none() {
            // Opened once: the handle keeps reading after the file is renamed. A commit may
            // have renamed the file since this reader looked: then the blob is where verified
            // blobs live.
            let file = match tokio::fs::File::open(&self.temp).await {
                Err(_) => tokio::fs::File::open(&self.stored).await?,
                Ok(file) => file,
            };
            self.file = Some(file);
            self.file_offset = 0;
        }
        let file = self.file.as_mut().expect("opened above");
        if self.file_offset != self.delivered {
            file.seek(std::io::SeekFrom::Start(self.delivered)).await?;
        }
        let want = (end - self.delivered).min(READ_CHUNK as u64) as usize;
        let mut buffer = vec![0u8; want];
        file.read_exact(&mut buffer).await?;
        self.file_offset = self.delivered + want as u64;
        Ok(Bytes::from(buffer))
    }

    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.ended {
            return None;
        }
        loop {
            // Read without cloning the phase: this runs for every chunk of every reader.
            let current = {
                let progress = self.progress.borrow_and_update();
                if let Phase::Failed(reason) = &progress.phase {
                    self.ended = true;
                    return Some(Err(std::io::Error::other(reason.clone())));
                }
                Seen {
                    received: progress.received,
                    on_disk: progress.on_disk,
                    verified: progress.verified,
                    done: progress.done,
                }
            };
            // The last byte waits until the digest checked out.
            let deliverable = if current.verified {
                current.received
            } else {
                current.received.saturating_sub(1)
            };
            if self.delivered < deliverable {
                if let Some(bytes) = self.flight.window_bytes(self.delivered, deliverable) {
                    self.delivered += bytes.len() as u64;
                    return Some(Ok(bytes));
                }
                // Behind the window: what it let go of is in the file.
                let end = deliverable.min(current.on_disk);
                if self.delivered < end {
                    let read = self.file_bytes(end).await;
                    if let Ok(bytes) = &read {
                        self.delivered += bytes.len() as u64;
                    }
                    return Some(read);
                }
            }
            if current.done && self.delivered >= current.received {
                return None;
            }
            if self.progress.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// The bytes of a streaming fetch as they arrive: from the flight's window while the reader
/// keeps up, else from `temp` (or from `stored`, where the blob is once it checked out).
pub fn read(
    flight: Arc<Flight>,
    temp: PathBuf,
    stored: PathBuf,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let reader = Reader {
        progress: flight.subscribe(),
        flight,
        temp,
        stored,
        file: None,
        file_offset: 0,
        delivered: 0,
        ended: false,
    };
    futures_util::stream::unfold(reader, |mut reader| async move {
        let next = reader.next().await?;
        Some((next, reader))
    })
}

#[cfg(test)]
mod tests;
