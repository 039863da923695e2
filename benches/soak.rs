//! A bounded soak of one `berth serve` on PostgreSQL: concurrent pushes (chunked blob uploads
//! and manifests), pulls (manifests and blobs, each checked against its digest) and API calls
//! (creates, lists, the event log, histories) for `SOAK_SECONDS` (300 under `make bench`).
//!
//! Every few seconds it samples the server's resident memory, open file descriptors and the
//! files in `uploads/` (sessions and temporary files). It fails on any error answer, on
//! uploads left behind, on descriptors that keep growing, and (in the full run) on memory that
//! grows after warm-up by more than the configured cache size plus allocator slack. Under
//! `cargo test` it runs for a few seconds to prove the harness works.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::push::{Pusher, Store, sha256};

/// The manifest cache the server is started with.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Growth the allocator may show beyond the caches (fragmentation, pools, buffers).
const SLACK_BYTES: u64 = 48 * 1024 * 1024;

/// Counters the workers share.
#[derive(Default)]
struct Counts {
    pushes: AtomicU64,
    pulls: AtomicU64,
    api_calls: AtomicU64,
    bytes_pushed: AtomicU64,
    bytes_pulled: AtomicU64,
    errors: AtomicU64,
}

/// One reading of the server process.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    rss: u64,
    fds: usize,
    uploads: usize,
}

fn sample(pid: u32, data_dir: &std::path::Path, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    Sample {
        at: started.elapsed(),
        rss: kib * 1024,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        uploads: std::fs::read_dir(data_dir.join("uploads")).unwrap().count(),
    }
}

/// The layer size of push `i` of worker `w`: between 16 KiB and 1 MiB.
fn layer_size(worker: u64, i: u64) -> usize {
    16 * 1024 + ((worker * 7919 + i * 104_729) % (1008 * 1024)) as usize
}

struct Soak {
    pusher: Pusher,
    counts: Counts,
    stop: AtomicBool,
}

impl Soak {
    fn fail(&self, what: &str, detail: impl std::fmt::Display) {
        if self.counts.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("soak: {what}: {detail}");
        }
    }

    /// Sends a request with the admin token and expects `status`; counts a failure otherwise.
    async fn expect(
        &self,
        what: &str,
        (method, path, headers, body): (&str, &str, &[(&str, &str)], Vec<u8>),
        status: u16,
    ) -> Option<reqwest::Response> {
        match self.pusher.send(method, path, headers, body).await {
            Ok(r) if r.status().as_u16() == status => Some(r),
            Ok(r) => {
                let got = r.status();
                self.fail(
                    what,
                    format!("{got} {}", r.text().await.unwrap_or_default()),
                );
                None
            }
            Err(e) => {
                self.fail(what, e);
                None
            }
        }
    }

    /// A chunked layer upload, a config and a manifest tagged `tag`.
    async fn push(&self, repository: &str, tag: &str, layer_size: usize) -> Option<()> {
        if self
            .pusher
            .push_image(repository, tag, layer_size)
            .await
            .is_none()
        {
            self.fail("push", format!("{repository}:{tag} was not acknowledged"));
            return None;
        }
        self.counts.pushes.fetch_add(1, Ordering::Relaxed);
        self.counts
            .bytes_pushed
            .fetch_add(layer_size as u64, Ordering::Relaxed);
        Some(())
    }

    /// The manifest of `tag`, then its layer, checked against its digest.
    async fn pull(&self, repository: &str, tag: &str) -> Option<()> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
        let manifest = self
            .expect("pull manifest", ("GET", &path, &accept, Vec::new()), 200)
            .await?;
        let manifest: serde_json::Value = manifest.json().await.ok()?;
        let layer = manifest["layers"][0]["digest"].as_str()?.to_owned();
        let path = format!("/v2/{repository}/blobs/{layer}");
        let blob = self
            .expect("pull blob", ("GET", &path, &[], Vec::new()), 200)
            .await?;
        let bytes = blob.bytes().await.ok()?;
        if sha256(&bytes) != layer {
            self.fail("pull blob", format!("{layer} served other bytes"));
            return None;
        }
        self.counts.pulls.fetch_add(1, Ordering::Relaxed);
        self.counts
            .bytes_pulled
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Some(())
    }

    /// A create, then reads of the lists, the log and the new registry's history.
    async fn api(&self, i: u64) -> Option<()> {
        let name = format!("api-{i}");
        let body = json!({"name": name, "package_type": if i.is_multiple_of(2) { "DOCKER" } else { "HELM" }, "labels": ["soak"]});
        let json = [("Content-Type", "application/json")];
        let create = (
            "POST",
            "/api/v1/registries",
            &json[..],
            body.to_string().into_bytes(),
        );
        self.expect("create registry", create, 201).await?;
        for path in [
            "/api/v1/registries?page_size=20&label=soak".to_owned(),
            "/api/v1/events?limit=50".to_owned(),
            format!("/api/v1/registries/{name}/history"),
            "/api/v1/registries/soak/tags?image=app0".to_owned(),
        ] {
            self.expect("api read", ("GET", &path, &[], Vec::new()), 200)
                .await?;
        }
        self.counts.api_calls.fetch_add(5, Ordering::Relaxed);
        Some(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 300 } else { 6 });
    let store = Store::new(true).await;
    let data_dir = store.dir.path().to_path_buf();
    let cache = CACHE_BYTES.to_string();
    let (server, pusher) = store
        .serve_with(
            &["--manifest-cache-bytes", &cache],
            &[("BERTH_LOG", "warn")],
        )
        .await;
    let soak = Arc::new(Soak {
        pusher,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    soak.pusher
        .create_registry("soak", "DOCKER")
        .await
        .expect("create the registry");
    // Something to pull from the first moment.
    for w in 0..2 {
        soak.push(&format!("soak/app{w}"), "t0", layer_size(w, 0))
            .await
            .expect("seed push");
    }

    let mut workers = Vec::new();
    for w in 0..2u64 {
        let soak = soak.clone();
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !soak.stop.load(Ordering::Relaxed) {
                i += 1;
                // Tags cycle, so old manifests lose their tags as a real registry's do.
                soak.push(
                    &format!("soak/app{w}"),
                    &format!("t{}", i % 20),
                    layer_size(w, i),
                )
                .await;
            }
        }));
    }
    for r in 0..3u64 {
        let soak = soak.clone();
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !soak.stop.load(Ordering::Relaxed) {
                i += 1;
                soak.pull(&format!("soak/app{}", (r + i) % 2), "t0").await;
            }
        }));
    }
    {
        let soak = soak.clone();
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !soak.stop.load(Ordering::Relaxed) {
                i += 1;
                soak.api(i).await;
            }
        }));
    }

    let started = Instant::now();
    let every = Duration::from_secs(if measuring { 10 } else { 1 });
    let mut samples = vec![sample(server.pid(), &data_dir, started)];
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(every).await;
        samples.push(sample(server.pid(), &data_dir, started));
    }
    soak.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = sample(server.pid(), &data_dir, started);

    let c = &soak.counts;
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64 / elapsed;
    println!(
        "soak: {seconds} s on PostgreSQL, manifest cache {} MiB",
        CACHE_BYTES >> 20
    );
    println!(
        "  pushes {} ({:.1}/s, {:.1} MiB), pulls {} ({:.1}/s, {:.1} MiB), API calls {} ({:.1}/s), errors {}",
        c.pushes.load(Ordering::Relaxed),
        per_second(&c.pushes),
        c.bytes_pushed.load(Ordering::Relaxed) as f64 / 1048576.0,
        c.pulls.load(Ordering::Relaxed),
        per_second(&c.pulls),
        c.bytes_pulled.load(Ordering::Relaxed) as f64 / 1048576.0,
        c.api_calls.load(Ordering::Relaxed),
        per_second(&c.api_calls),
        c.errors.load(Ordering::Relaxed)
    );
    println!(
        "  {:>6}  {:>9}  {:>4}  {:>7}",
        "time", "RSS MiB", "fds", "uploads"
    );
    for s in samples.iter().chain([&last]) {
        println!(
            "  {:>5.0}s  {:>9.1}  {:>4}  {:>7}",
            s.at.as_secs_f64(),
            s.rss as f64 / 1048576.0,
            s.fds,
            s.uploads
        );
    }
    // Warm-up: the first fifth of the run (caches fill, pools open).
    let warm = samples[samples.len() / 5];
    let after = &samples[samples.len() / 5..];
    let peak = after.iter().map(|s| s.rss).max().unwrap();
    let growth = peak.saturating_sub(warm.rss);
    println!(
        "  after warm-up ({:.0} s): RSS {:.1} MiB, peak {:.1} MiB (growth {:.1} MiB); fds {}..{}; uploads left at the end: {}",
        warm.at.as_secs_f64(),
        warm.rss as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        growth as f64 / 1048576.0,
        after.iter().map(|s| s.fds).min().unwrap(),
        after.iter().map(|s| s.fds).max().unwrap(),
        last.uploads,
    );

    assert_eq!(
        c.errors.load(Ordering::Relaxed),
        0,
        "requests failed during the soak"
    );
    assert!(c.pushes.load(Ordering::Relaxed) > 0 && c.pulls.load(Ordering::Relaxed) > 0);
    assert_eq!(
        last.uploads, 0,
        "uploads or temporary files were left behind"
    );
    // Connections close as the workers stop; the descriptors must come back to where they were
    // after warm-up (pool connections and the listener stay). A run of seconds is mostly
    // warm-up, so the pool may still be opening connections then: it gets more room.
    let room = if measuring { 4 } else { 12 };
    assert!(
        last.fds <= warm.fds + room,
        "descriptors leaked: {} after warm-up, {} at the end",
        warm.fds,
        last.fds
    );
    if measuring {
        assert!(
            growth <= CACHE_BYTES + SLACK_BYTES,
            "memory grew {growth} bytes after warm-up, more than the cache ({CACHE_BYTES}) and slack ({SLACK_BYTES})"
        );
    }
    drop(server);
}
