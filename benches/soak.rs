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
use sha2::{Digest, Sha256};
use support::postgres::TestDatabase;
use support::server::{TestServer, mint_token};

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

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Bytes that differ per `(worker, i)`, of a size between 16 KiB and 1 MiB.
fn payload(worker: u64, i: u64) -> Vec<u8> {
    let size = 16 * 1024 + ((worker * 7919 + i * 104_729) % (1008 * 1024)) as usize;
    let seed = (worker << 32) ^ i;
    (0..size)
        .map(|n| ((n as u64).wrapping_mul(0x9E37_79B9) ^ seed) as u8)
        .collect()
}

struct Soak {
    client: reqwest::Client,
    base: String,
    token: String,
    counts: Counts,
    stop: AtomicBool,
}

impl Soak {
    fn fail(&self, what: &str, detail: impl std::fmt::Display) {
        if self.counts.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("soak: {what}: {detail}");
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.client.request(method, url).bearer_auth(&self.token)
    }

    /// Sends and expects `status`; counts a failure otherwise.
    async fn expect(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        status: u16,
    ) -> Option<reqwest::Response> {
        match request.send().await {
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

    /// A chunked upload (POST, two PATCHes, PUT), then a manifest tagged `tag`.
    async fn push(&self, repository: &str, tag: &str, layer: Vec<u8>) -> Option<()> {
        use reqwest::Method;
        let layer_digest = digest(&layer);
        let started = self
            .expect(
                "start upload",
                self.request(Method::POST, &format!("/v2/{repository}/blobs/uploads/")),
                202,
            )
            .await?;
        let mut location = started.headers()["location"].to_str().ok()?.to_owned();
        let half = layer.len() / 2;
        for (from, to) in [(0, half), (half, layer.len())] {
            let patched = self
                .expect(
                    "patch upload",
                    self.request(Method::PATCH, &location)
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", format!("{from}-{}", to - 1))
                        .body(layer[from..to].to_vec()),
                    202,
                )
                .await?;
            location = patched.headers()["location"].to_str().ok()?.to_owned();
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        self.expect(
            "finish upload",
            self.request(
                Method::PUT,
                &format!("{location}{separator}digest={layer_digest}"),
            ),
            201,
        )
        .await?;
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
        let config_digest = digest(&config);
        self.expect(
            "config",
            self.request(
                Method::POST,
                &format!("/v2/{repository}/blobs/uploads/?digest={config_digest}"),
            )
            .body(config.clone()),
            201,
        )
        .await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        self.expect(
            "manifest",
            self.request(Method::PUT, &format!("/v2/{repository}/manifests/{tag}"))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest),
            201,
        )
        .await?;
        self.counts.pushes.fetch_add(1, Ordering::Relaxed);
        self.counts
            .bytes_pushed
            .fetch_add(layer.len() as u64, Ordering::Relaxed);
        Some(())
    }

    /// The manifest of `tag`, then its layer, checked against its digest.
    async fn pull(&self, repository: &str, tag: &str) -> Option<()> {
        use reqwest::Method;
        let manifest = self
            .expect(
                "pull manifest",
                self.request(Method::GET, &format!("/v2/{repository}/manifests/{tag}"))
                    .header("Accept", "application/vnd.oci.image.manifest.v1+json"),
                200,
            )
            .await?;
        let manifest: serde_json::Value = manifest.json().await.ok()?;
        let layer = manifest["layers"][0]["digest"].as_str()?.to_owned();
        let blob = self
            .expect(
                "pull blob",
                self.request(Method::GET, &format!("/v2/{repository}/blobs/{layer}")),
                200,
            )
            .await?;
        let bytes = blob.bytes().await.ok()?;
        if digest(&bytes) != layer {
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
        use reqwest::Method;
        let name = format!("api-{i}");
        let body = json!({"name": name, "package_type": if i.is_multiple_of(2) { "DOCKER" } else { "HELM" }, "labels": ["soak"]});
        self.expect(
            "create registry",
            self.request(Method::POST, "/api/v1/registries").json(&body),
            201,
        )
        .await?;
        for path in [
            "/api/v1/registries?page_size=20&label=soak".to_owned(),
            "/api/v1/events?limit=50".to_owned(),
            format!("/api/v1/registries/{name}/history"),
            "/api/v1/registries/soak/tags?image=app0".to_owned(),
        ] {
            self.expect("api read", self.request(Method::GET, &path), 200)
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
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let token = mint_token(&data_dir_text, "soak", "admin");
    let cache = CACHE_BYTES.to_string();
    let server = TestServer::start(
        &[
            "--data-dir",
            &data_dir_text,
            "--database-url",
            &database.url,
            "--manifest-cache-bytes",
            &cache,
        ],
        &[("BERTH_LOG", "warn")],
    );
    let soak = Arc::new(Soak {
        client: reqwest::Client::new(),
        base: server.base_url.clone(),
        token,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    // On PostgreSQL the server listens before its schema is in place; wait until it is ready.
    for _ in 0..300 {
        let ready = soak
            .client
            .get(format!("{}/readyz", soak.base))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = soak
        .request(reqwest::Method::POST, "/api/v1/registries")
        .json(&json!({"name": "soak", "package_type": "DOCKER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Something to pull from the first moment.
    for w in 0..2 {
        soak.push(&format!("soak/app{w}"), "t0", payload(w, 0))
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
                    payload(w, i),
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
