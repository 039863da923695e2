//! The two hot paths, side by side with CNCF Distribution in one run on one machine:
//! - a cold pull through a Berth proxy (the first pull, nothing cached) against the same pull
//!   straight from the Distribution that is the proxy's remote: one client on a 256 MiB blob,
//!   sixteen clients at once against sixteen straight from Distribution at once, skopeo copying
//!   a three-layer image, and the warm pull that follows (from Berth's store);
//! - manifest GET by tag with a token (wrk -t2 -c4), against Distribution's and against
//!   Berth's own `GET /v2/` with the same token (the cost of the auth check alone), on SQLite
//!   and on a fresh PostgreSQL database (found as the tests find theirs).
//!
//! Every cold pull gets a fresh Berth data directory, so nothing of an earlier run is stored.
//! `make bench` runs it in full. Under `cargo test` it makes one small cold and warm pull
//! through a proxy, to prove the harness still works. `BENCH_BLOB_MIB` sets the blob size.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::time::{Duration, Instant};

use common::{
    Target, blob, mib_per_s, pull, push, push_manifest, start_distribution, wait_up, wrk,
};
use serde_json::json;
use support::server::{TestServer, mint_token};

/// A Berth server on a data directory of its own, with a proxy `cold` to `remote`.
struct Berth {
    server: TestServer,
    target: Target,
    _dir: tempfile::TempDir,
}

impl Berth {
    async fn start(client: &reqwest::Client, remote: &str, database: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let token = mint_token(&data_dir, "bench", "admin");
        let mut env = vec![("BERTH_LOG", "warn")];
        if let Some(url) = database {
            env.push(("DATABASE_URL", url));
        }
        let server = TestServer::start(&["--data-dir", &data_dir], &env);
        let target = Target {
            name: "berth",
            base: server.base_url.clone(),
            auth: Some(format!("Bearer {token}")),
        };
        ready(client, &target.base).await;
        let proxy =
            json!({"key": "cold", "package_type": "DOCKER", "source": "CUSTOM", "url": remote});
        let registry = json!({"name": "bench", "package_type": "DOCKER"});
        for (path, body) in [
            ("/api/v1/upstream-proxies", proxy),
            ("/api/v1/registries", registry),
        ] {
            let created = target
                .request(client, reqwest::Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201, "{path}");
        }
        Self {
            server,
            target,
            _dir: dir,
        }
    }
}

/// Waits until the server at `base` is ready (on PostgreSQL, its schema is migrated).
async fn ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{base} never became ready");
}

/// Waits until blob `digest` of `repo` is in Berth's store: the last byte of a cold pull goes
/// out once the digest matched, while the blob is still being made durable, and a pull before
/// that joins the fetch. Only a stored blob's answer offers ranges.
async fn stored(client: &reqwest::Client, target: &Target, repo: &str, digest: &str) {
    let path = format!("/v2/{repo}/blobs/{digest}");
    for _ in 0..400 {
        let head = target
            .request(client, reqwest::Method::HEAD, &path)
            .send()
            .await
            .unwrap();
        if head.headers().contains_key("accept-ranges") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} was never stored");
}

/// The fastest of `runs` runs of `pull_once`.
async fn best<F, Fut>(runs: usize, mut pull_once: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut best = Duration::MAX;
    for run in 0..runs {
        best = best.min(pull_once(run).await);
    }
    best
}

/// `clients` pulls of `path` at once from `target`; each one's time, slowest last.
async fn at_once(
    client: &reqwest::Client,
    target: &Target,
    repo: &str,
    digest: &str,
    size: usize,
    clients: usize,
) -> Vec<Duration> {
    let pulls = (0..clients).map(|_| pull(client, target, repo, digest, size));
    let mut times = futures_util::future::join_all(pulls).await;
    times.sort();
    times
}

/// Copies `image` with skopeo into a fresh directory; how long it took.
fn skopeo_copy(image: &str, creds: Option<&str>) -> Duration {
    let out = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", out.path().display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    let creds = creds.map(|token| format!("bench:{token}"));
    if let Some(creds) = &creds {
        args.extend(["--src-creds", creds]);
    }
    args.extend([image, &target]);
    let started = Instant::now();
    support::clients::skopeo_ok(&args);
    started.elapsed()
}

/// Pushes a three-layer image of `layer_mib` MiB layers to `bench/image:v1` of `target`.
async fn push_image(client: &reqwest::Client, target: &Target, layer_mib: usize) {
    let mut layers = Vec::new();
    for seed in 0..3 {
        let (data, digest) = blob(layer_mib, 100 + seed);
        let size = data.len();
        push(client, target, "bench/image", data, &digest).await;
        layers.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": digest, "size": size}),
        );
    }
    let config = bytes::Bytes::from_static(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    let config_digest = support::push::sha256(&config);
    let config_size = config.len();
    push(client, target, "bench/image", config, &config_digest).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layers,
    });
    let response = target
        .request(client, reqwest::Method::PUT, "/v2/bench/image/manifests/v1")
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

fn ratio_line(what: &str, berth: f64, reference: f64, unit: &str) {
    println!(
        "{what:<44} berth {berth:>9.1} {unit:<6} reference {reference:>9.1} {unit:<6} ratio {:>6.2}x",
        berth / reference
    );
}

async fn cold_pulls(client: &reqwest::Client, remote: &Target, mib: usize, runs: usize) {
    let (data, digest) = blob(mib, 7);
    let size = data.len();
    push(client, remote, "bench/big", data, &digest).await;
    let direct = best(runs, |_| pull(client, remote, "bench/big", &digest, size)).await;
    let (mut cold, mut warm) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let berth = Berth::start(client, &remote.base, None).await;
        cold = cold.min(pull(client, &berth.target, "cold/bench/big", &digest, size).await);
        stored(client, &berth.target, "cold/bench/big", &digest).await;
        warm = warm.min(pull(client, &berth.target, "cold/bench/big", &digest, size).await);
    }
    let direct_rate = mib_per_s(size, direct);
    println!("{mib} MiB blob, best of {runs}:");
    ratio_line(
        "  cold pull through a proxy vs direct",
        mib_per_s(size, cold),
        direct_rate,
        "MiB/s",
    );
    ratio_line(
        "  warm pull from Berth vs direct",
        mib_per_s(size, warm),
        direct_rate,
        "MiB/s",
    );
}

async fn concurrent_cold_pulls(client: &reqwest::Client, remote: &Target, mib: usize) {
    let clients = 16;
    let (data, digest) = blob(mib, 8);
    let size = data.len();
    push(client, remote, "bench/shared", data, &digest).await;
    let direct = at_once(client, remote, "bench/shared", &digest, size, clients).await;
    let berth = Berth::start(client, &remote.base, None).await;
    let cold = at_once(
        client,
        &berth.target,
        "cold/bench/shared",
        &digest,
        size,
        clients,
    )
    .await;
    let (slowest_direct, slowest_cold) = (direct[clients - 1], cold[clients - 1]);
    println!("{clients} clients at once on one {mib} MiB blob (the slowest client of each):");
    ratio_line(
        "  cold through a proxy vs direct, per client",
        mib_per_s(size, slowest_cold),
        mib_per_s(size, slowest_direct),
        "MiB/s",
    );
}

async fn skopeo_pulls(client: &reqwest::Client, remote: &Target, layer_mib: usize, runs: usize) {
    push_image(client, remote, layer_mib).await;
    let host = remote.base.trim_start_matches("http://");
    let direct_image = format!("docker://{host}/bench/image:v1");
    let mut direct = Duration::MAX;
    for _ in 0..runs {
        direct = direct.min(skopeo_copy(&direct_image, None));
    }
    let mut cold = Duration::MAX;
    for _ in 0..runs {
        let berth = Berth::start(client, &remote.base, None).await;
        let token = berth
            .target
            .auth
            .as_deref()
            .unwrap()
            .trim_start_matches("Bearer ");
        let host = berth.target.base.trim_start_matches("http://");
        let image = format!("docker://{host}/cold/bench/image:v1");
        cold = cold.min(skopeo_copy(&image, Some(token)));
    }
    let size = 3 * layer_mib * 1024 * 1024;
    println!("skopeo copy of a 3-layer image ({layer_mib} MiB layers), best of {runs}:");
    ratio_line(
        "  cold through a proxy vs direct",
        mib_per_s(size, cold),
        mib_per_s(size, direct),
        "MiB/s",
    );
}

async fn manifest_gets(client: &reqwest::Client, remote: &Target, dir: &std::path::Path) {
    let theirs = push_manifest(client, remote).await;
    let (dist_rate, dist_p99) = wrk(&theirs, None, dir);
    println!("manifest GET by tag, wrk -t2 -c4 -d10s (p99 in ms):");
    println!("  distribution       {dist_rate:>9.0} req/s   p99 {dist_p99:>6.2}");
    let postgres = support::postgres::TestDatabase::create().await;
    let backends = [
        ("sqlite", None),
        ("postgresql", Some(postgres.url.as_str())),
    ];
    for (backend, database) in backends {
        let berth = Berth::start(client, &remote.base, database).await;
        let ours = push_manifest(client, &berth.target).await;
        let auth = berth.target.auth.as_deref();
        let (rate, p99) = wrk(&ours, auth, dir);
        let base = format!("{}/v2/", berth.target.base);
        let (base_rate, base_p99) = wrk(&base, auth, dir);
        println!(
            "  berth {backend:<11}  {rate:>9.0} req/s   p99 {p99:>6.2}   ({:.2}x distribution)",
            rate / dist_rate
        );
        println!(
            "  berth {backend:<11} GET /v2/ alone {base_rate:>9.0} req/s   p99 {base_p99:>6.2}   (by tag at {:.2}x of it)",
            rate / base_rate
        );
        drop(berth.server);
    }
}

#[tokio::main]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("BENCH_BLOB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 256 } else { 4 });
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (distribution, base) = start_distribution(dir.path());
    let _distribution = Stopped(distribution);
    wait_up(&client, &base).await;
    let remote = Target {
        name: "distribution",
        base,
        auth: None,
    };
    if measuring {
        cold_pulls(&client, &remote, mib, 3).await;
        concurrent_cold_pulls(&client, &remote, 64).await;
        skopeo_pulls(&client, &remote, 64, 3).await;
        manifest_gets(&client, &remote, dir.path()).await;
    } else {
        cold_pulls(&client, &remote, mib, 1).await;
    }
}

/// A process stopped when dropped, even when a measurement panics.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
