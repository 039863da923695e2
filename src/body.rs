//! Request bodies: read up to a limit, and whatever a handler leaves unread is read to its end
//! before the answer goes out.
//!
//! A server that answers while the client is still sending, and then closes the connection,
//! makes the client's kernel see a reset; most clients then report a broken pipe instead of the
//! answer. That hides every refusal of a request with a body: a 413, but just as much a 401 for
//! a token that expired in the middle of a long push, which a client can only answer by
//! authenticating again if it hears it. So [`drain_unread`] wraps every endpoint: the
//! handler reads the body through a [`Tap`], and what it left is read on and dropped, up to
//! [`DRAIN_BYTES`] and for at most [`DRAIN_TIME`]; nothing of it is kept. A body larger than
//! that still gets the connection closed. A client waiting on `Expect: 100-continue` whose body
//! was never asked for is answered before it sends anything.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use poem::http::header;
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tokio::io::AsyncReadExt;

/// The most of an unread body read and dropped so that its sender sees the answer.
pub const DRAIN_BYTES: u64 = 16 * 1024 * 1024;

/// The longest an unread body is read for.
pub const DRAIN_TIME: Duration = Duration::from_secs(30);

/// The body whole if it has at most `limit` bytes; `None` if it has more or breaks off. What is
/// past the limit is left to [`drain_unread`].
pub async fn read_limited(body: Body, limit: usize) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    body.into_async_read()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    (bytes.len() <= limit).then_some(bytes)
}

/// Middleware: calls `next` with the request's body behind a [`Tap`], then drains what the
/// endpoint left of it before the answer is sent.
pub async fn drain_unread<E: Endpoint>(
    next: Arc<E>,
    mut request: Request,
) -> poem::Result<Response> {
    let announced = announced_length(&request);
    if announced == Some(0) || (announced.is_none() && !is_chunked(&request)) {
        // No body: nothing to tap, and nothing on the hot path of a GET.
        return next.call(request).await.map(IntoResponse::into_response);
    }
    let waits = expects_continue(&request);
    let tap = Tap::new(request.take_body());
    request.set_body(Body::from_bytes_stream(tap.clone()));
    let answer = next.call(request).await.map(IntoResponse::into_response);
    tap.drain(announced, waits).await;
    answer
}

fn announced_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn is_chunked(request: &Request) -> bool {
    request.headers().contains_key(header::TRANSFER_ENCODING)
}

fn expects_continue(request: &Request) -> bool {
    request
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

type Chunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A request body shared between the handler, which reads it as a stream, and the middleware,
/// which reads on what the handler left once it has answered.
#[derive(Clone)]
struct Tap(Arc<Mutex<Tapped>>);

struct Tapped {
    chunks: Chunks,
    read: u64,
    started: bool,
    ended: bool,
}

impl Tap {
    fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(Tapped {
            chunks: Box::pin(body.into_bytes_stream()),
            read: 0,
            started: false,
            ended: false,
        })))
    }

    /// Reads on and drops what is left, unless nothing is, the client has not been asked to
    /// send it yet (`Expect: 100-continue`), or more is announced than is worth reading.
    async fn drain(self, announced: Option<u64>, waits: bool) {
        let (started, read) = {
            let tapped = self.0.lock().expect("tap lock");
            if tapped.ended {
                return;
            }
            (tapped.started, tapped.read)
        };
        if waits && !started {
            return;
        }
        if announced.is_some_and(|len| len.saturating_sub(read) > DRAIN_BYTES) {
            return;
        }
        let drained = async {
            let mut left = DRAIN_BYTES;
            let mut chunks = self.clone();
            while let Some(Ok(chunk)) = chunks.next().await {
                left = left.saturating_sub(chunk.len() as u64);
                if left == 0 {
                    break;
                }
            }
        };
        // A client that breaks off or dawdles while being drained has nothing left to be told.
        let _ = tokio::time::timeout(DRAIN_TIME, drained).await;
    }
}

impl Stream for Tap {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut tapped = self.0.lock().expect("tap lock");
        if tapped.ended {
            return Poll::Ready(None);
        }
        tapped.started = true;
        let next = tapped.chunks.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => tapped.read += chunk.len() as u64,
            Poll::Ready(_) => tapped.ended = true,
            Poll::Pending => {}
        }
        next
    }
}
