//! Request bodies read up to a limit, and refused ones read to their end.
//!
//! A server that answers 413 and closes the connection while the client is still sending makes
//! the client's kernel see a reset, and most clients then report a broken pipe instead of the
//! refusal. So a refused body is read on and dropped, up to [`DRAIN_BYTES`], before the answer
//! goes out; nothing of it is kept. A body larger than that, or slower than [`DRAIN_TIME`],
//! still gets the connection closed. A client that asked `Expect: 100-continue` and announced
//! too much is refused before it sends anything.

use std::time::Duration;

use poem::{Body, Request};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of a refused body read and dropped so that its sender sees the refusal.
pub const DRAIN_BYTES: u64 = 16 * 1024 * 1024;

/// The longest a refused body is read for.
pub const DRAIN_TIME: Duration = Duration::from_secs(30);

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

/// Reads the body of `request`, refused for the size its `Content-Length` announces, if it is
/// small enough to drain and the client is sending it. Reading it would ask a client waiting
/// on `Expect: 100-continue` to send what is refused anyway, so that one is not read.
pub async fn drain_announced(request: &mut Request, announced: u64) {
    let waits = request
        .headers()
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !waits && announced <= DRAIN_BYTES {
        drain_reader(request.take_body().into_async_read()).await;
    }
}

async fn drain_reader(reader: impl AsyncRead + Unpin) {
    let (mut limited, mut sink) = (reader.take(DRAIN_BYTES), tokio::io::sink());
    let drained = tokio::io::copy(&mut limited, &mut sink);
    // A client that breaks off or dawdles while being drained has nothing left to be told.
    let _ = tokio::time::timeout(DRAIN_TIME, drained).await;
}
