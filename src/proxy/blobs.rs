//! Blobs through a proxy: streamed to clients from memory as they arrive, while a sink hashes
//! them and writes them to storage; committed only when the digest matches, one fetch however
//! many ask at once (see [`super::flight`]).

use std::sync::Arc;

use bytes::Bytes;
use reqwest::Method;
use tokio::sync::mpsc;

use super::flight::{self, Flight, Phase};
use super::stats::Count;
use super::{BlobFetch, ProxyError, PullThrough, RemoteBlob, Upstream};
use crate::domain::oci::{Digest, RepositoryName};
use crate::storage::{BlobStore, BlobWriter, StorageError};

/// How many received chunks may wait for the sink before the fetch waits for it.
const SINK_QUEUE: usize = 64;

/// The most bytes the sink gathers into one write.
const SINK_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Hashes and writes what the fetch received, in batches of whatever has gathered since the
/// last write, and tells the flight how far the file goes. Gives the writer back at the end.
async fn sink(
    mut writer: BlobWriter,
    mut chunks: mpsc::Receiver<Bytes>,
    flight: Arc<Flight>,
) -> Result<BlobWriter, StorageError> {
    while let Some(first) = chunks.recv().await {
        let mut batch_bytes = first.len();
        let mut batch = vec![first];
        while batch_bytes < SINK_BATCH_BYTES {
            let Ok(next) = chunks.try_recv() else { break };
            batch_bytes += next.len();
            batch.push(next);
        }
        writer.write(batch).await?;
        flight.written(batch_bytes as u64);
    }
    Ok(writer)
}

/// Ends a fetch whose starting request went away before the fetch ran on its own.
struct Abandoned<'a> {
    flights: &'a super::flight::Flights,
    digest: &'a Digest,
    flight: &'a Flight,
    armed: bool,
}

impl Abandoned<'_> {
    /// The fetch started (or ended) as it should: nothing to do.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if self.armed {
            let reason = "the request that started the fetch went away".to_owned();
            self.flights
                .finish(self.digest, self.flight, Phase::Failed(reason));
        }
    }
}

impl PullThrough {
    /// The size of blob `digest` of `path` on the remote; `None` when it lacks it.
    pub async fn blob_size(
        &self,
        upstream: &Upstream,
        path: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, ProxyError> {
        let remote = format!("/v2/{}/blobs/{digest}", upstream.remote_path(path));
        let response = self.fetch(upstream, Method::HEAD, &remote, None).await?;
        Ok(response.and_then(|r| r.content_length()))
    }

    /// Blob `digest` of `path` from the remote, stored as it streams: one fetch however many
    /// ask at once (see [`flight`]). It is committed and linked into the cache repository only
    /// when the bytes hash to `digest`, and the fetch runs to the end even if every client goes
    /// away, so the next pull finds it stored.
    pub async fn blob(
        &self,
        upstream: &Upstream,
        path: &str,
        digest: &Digest,
    ) -> Result<BlobFetch, ProxyError> {
        let Some(cache) = upstream.cache_repository(path) else {
            return Ok(BlobFetch::Missing);
        };
        let (flight, leader) = self.flights.join(digest);
        if leader {
            // Until the fetch runs on its own, it lives in this request: should the request go
            // away first (the client left, the connection timed out), the fetch must end, or
            // every later pull of the blob would wait on it.
            let abandoned = Abandoned {
                flights: &self.flights,
                digest,
                flight: &flight,
                armed: true,
            };
            let started = self
                .start_fetch(upstream, path, &cache, digest, flight.clone())
                .await;
            abandoned.disarm();
            started?;
        } else {
            // Joined a fetch that may be for another cache repository: link this one too.
            let (blobs, digest, mut progress) =
                (self.blobs.clone(), digest.clone(), flight.subscribe());
            tokio::spawn(async move {
                while !progress.borrow_and_update().done {
                    if progress.changed().await.is_err() {
                        return;
                    }
                }
                if progress.borrow().phase == Phase::Stored {
                    let _ = blobs.link(&cache, &digest).await;
                }
            });
        }
        let mut progress = flight.subscribe();
        let failed = |reason: String| ProxyError::Failed {
            proxy: upstream.key.to_string(),
            reason,
        };
        match flight::started(&mut progress).await.phase {
            Phase::Missing => Ok(BlobFetch::Missing),
            Phase::Stored => Ok(BlobFetch::Stored),
            Phase::Streaming { temp, size } => Ok(BlobFetch::Streaming(RemoteBlob {
                size,
                chunks: Box::pin(flight::read(flight, temp, self.blobs.blob_path(digest))),
            })),
            Phase::Failed(reason) => Err(failed(reason)),
            Phase::Starting => Err(failed("the fetch ended before it started".into())),
        }
    }

    /// Sends the request for a blob and, when the remote has it, copies it to storage in the
    /// background, publishing progress on `flight`.
    async fn start_fetch(
        &self,
        upstream: &Upstream,
        path: &str,
        cache: &RepositoryName,
        digest: &Digest,
        flight: Arc<Flight>,
    ) -> Result<(), ProxyError> {
        let remote = format!("/v2/{}/blobs/{digest}", upstream.remote_path(path));
        let response = match self.fetch(upstream, Method::GET, &remote, None).await {
            Ok(Some(response)) => response,
            Ok(None) => {
                self.flights.finish(digest, &flight, Phase::Missing);
                return Ok(());
            }
            Err(e) => {
                self.stats.count(upstream.key.as_str(), Count::Error);
                self.flights
                    .finish(digest, &flight, Phase::Failed(e.to_string()));
                return Err(e);
            }
        };
        self.stats.count(upstream.key.as_str(), Count::Miss);
        let writer = match self.blobs.writer(digest).await {
            Ok(writer) => writer,
            Err(e) => {
                self.flights
                    .finish(digest, &flight, Phase::Failed(e.to_string()));
                return Err(e.into());
            }
        };
        let temp = writer.temp_path().to_path_buf();
        let size = response.content_length();
        flight.update(|p| p.phase = Phase::Streaming { temp, size });
        let (blobs, flights, stats) =
            (self.blobs.clone(), self.flights.clone(), self.stats.clone());
        let (cache, digest, key) = (cache.clone(), digest.clone(), upstream.key.clone());
        tokio::spawn(async move {
            let (to_sink, queue) = mpsc::channel(SINK_QUEUE);
            let sinking = tokio::spawn(sink(writer, queue, flight.clone()));
            let mut response = response;
            let failure = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let len = chunk.len() as u64;
                        flight.received(chunk.clone());
                        stats.count(key.as_str(), Count::Bytes(len));
                        if to_sink.send(chunk).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(format!("the transfer from {key} broke off: {e}")),
                }
            };
            drop(to_sink);
            let written = match sinking.await {
                Ok(written) => written.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let outcome = match (failure, written) {
                (Some(reason), _) | (None, Err(reason)) => Err(reason),
                (None, Ok(mut writer)) => match writer.verify() {
                    Err(e) => Err(format!("the blob from {key} is not {digest}: {e}")),
                    Ok(()) => {
                        // The whole blob checked out: its last byte may go to the readers
                        // while it is made durable.
                        flight.update(|p| p.verified = true);
                        match writer.commit().await {
                            Ok(()) => blobs.link(&cache, &digest).await.map_err(|e| e.to_string()),
                            Err(e) => Err(format!("storing the blob from {key} failed: {e}")),
                        }
                    }
                },
            };
            let phase = match outcome {
                Ok(()) => {
                    tracing::info!(proxy = %key, %digest, "fetched a blob");
                    Phase::Stored
                }
                Err(reason) => {
                    stats.count(key.as_str(), Count::Error);
                    tracing::warn!(proxy = %key, %digest, %reason, "discarded a fetched blob");
                    Phase::Failed(reason)
                }
            };
            flights.finish(&digest, &flight, phase);
        });
        Ok(())
    }
}
