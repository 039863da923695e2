//! Request bodies read up to a limit, and refused ones read to their end.
//!
//! A server that answers 413 and closes the connection while the client is still sending makes
//! the client's kernel see a reset, and most clients then report a broken pipe instead of the
//! refusal. So a refused body is read on and dropped, up to [`DRAIN_BYTES`], before the answer
//! goes out; nothing of it is kept. A body larger than that still gets the connection closed.

use poem::Body;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of a refused body read and dropped so that its sender sees the refusal.
pub const DRAIN_BYTES: u64 = 16 * 1024 * 1024;

/// The body whole if it has at most `limit` bytes; `None` if it has more (the rest is drained)
/// or breaks off.
pub async fn read_limited(body: Body, limit: usize) -> Option<Vec<u8>> {
    let mut reader = body.into_async_read();
    let mut bytes = Vec::new();
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    if bytes.len() > limit {
        drain_reader(reader).await;
        return None;
    }
    Some(bytes)
}

/// Reads a body that is refused as announced too large, if it is small enough to drain.
pub async fn drain(body: Body, announced: u64) {
    if announced <= DRAIN_BYTES {
        drain_reader(body.into_async_read()).await;
    }
}

async fn drain_reader(reader: impl AsyncRead + Unpin) {
    // A client that breaks off while being drained has nothing left to be told.
    let _ = tokio::io::copy(&mut reader.take(DRAIN_BYTES), &mut tokio::io::sink()).await;
}
