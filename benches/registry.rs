//! Berth side by side with CNCF Distribution (the `docker-registry` package, filesystem
//! storage, on 127.0.0.1), in one run on one machine: push and pull of a 256 MiB blob (MB/s)
//! and manifest GET by tag (requests/s and p99 with wrk, 4 connections).
//!
//! `make bench` runs it in full (it needs `docker-registry` and `wrk`, which `make bench`
//! installs). Under `cargo test` it pushes and pulls a small blob through Berth only, to prove
//! the harness still works. `BENCH_BLOB_MIB` sets the blob size.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::server::{TestServer, mint_token};

/// A registry under test: its base URL and the header that authorises requests.
struct Target {
    name: &'static str,
    base: String,
    auth: Option<String>,
}

impl Target {
    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let request = client.request(method, url);
        match &self.auth {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }
}

fn blob(mib: usize, seed: u64) -> (bytes::Bytes, String) {
    let mut data = vec![0u8; mib * 1024 * 1024];
    for (i, chunk) in data.chunks_mut(8).enumerate() {
        let word = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    (data.into(), digest)
}

async fn push(
    client: &reqwest::Client,
    target: &Target,
    repo: &str,
    data: bytes::Bytes,
    digest: &str,
) -> Duration {
    let started = Instant::now();
    let session = target
        .request(
            client,
            reqwest::Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 202, "{}: start upload", target.name);
    let location = session.headers()["location"].to_str().unwrap().to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = target
        .request(
            client,
            reqwest::Method::PUT,
            &format!("{location}{separator}digest={digest}"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201, "{}: finish upload", target.name);
    started.elapsed()
}

async fn pull(
    client: &reqwest::Client,
    target: &Target,
    repo: &str,
    digest: &str,
    size: usize,
) -> Duration {
    let started = Instant::now();
    let response = target
        .request(
            client,
            reqwest::Method::GET,
            &format!("/v2/{repo}/blobs/{digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}: pull", target.name);
    let mut stream = response.bytes_stream();
    let mut total = 0;
    while let Some(piece) = stream.next().await {
        total += piece.unwrap().len();
    }
    assert_eq!(total, size);
    started.elapsed()
}

async fn push_manifest(client: &reqwest::Client, target: &Target) -> String {
    let (config, config_digest) = (
        bytes::Bytes::from_static(b"{}"),
        format!("sha256:{:x}", Sha256::digest(b"{}")),
    );
    push(client, target, "bench/app", config, &config_digest).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": []
    })
    .to_string();
    let response = target
        .request(
            client,
            reqwest::Method::PUT,
            "/v2/bench/app/manifests/latest",
        )
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}: manifest", target.name);
    format!("{}/v2/bench/app/manifests/latest", target.base)
}

/// Runs wrk against `url` and returns (requests/s, p99 in ms).
fn wrk(url: &str, auth: Option<&str>, dir: &std::path::Path) -> (f64, f64) {
    let script = dir.join("headers.lua");
    let mut lua =
        String::from("wrk.headers[\"Accept\"] = \"application/vnd.oci.image.manifest.v1+json\"\n");
    if let Some(auth) = auth {
        lua.push_str(&format!("wrk.headers[\"Authorization\"] = \"{auth}\"\n"));
    }
    std::fs::write(&script, lua).unwrap();
    let output = Command::new("wrk")
        .args([
            "-t2",
            "-c4",
            "-d10s",
            "--latency",
            "-s",
            script.to_str().unwrap(),
            url,
        ])
        .output()
        .expect("wrk is needed: make bench installs it");
    let text = String::from_utf8_lossy(&output.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no rate:\n{text}"));
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| parse_latency(v.trim()))
        .unwrap_or_else(|| panic!("wrk printed no p99:\n{text}"));
    (rate, p99)
}

fn parse_latency(value: &str) -> f64 {
    let (number, unit) = value.split_at(
        value
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(value.len()),
    );
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        _ => f64::NAN,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_distribution(dir: &std::path::Path) -> (Child, String) {
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry is needed: make bench installs it");
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/v2/")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{base} did not come up");
}

fn mib_per_s(size: usize, took: Duration) -> f64 {
    size as f64 / 1048576.0 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("BENCH_BLOB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 256 } else { 4 });
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("berth");
    std::fs::create_dir_all(&data_dir).unwrap();
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let token = mint_token(&data_dir_text, "bench", "admin");
    let berth = TestServer::start(&["--data-dir", &data_dir_text], &[("BERTH_LOG", "warn")]);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/api/v1/registries", berth.base_url))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "package_type": "DOCKER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut targets = vec![Target {
        name: "berth",
        base: berth.base_url.clone(),
        auth: Some(format!("Bearer {token}")),
    }];
    let mut distribution = None;
    if measuring {
        let (child, base) = start_distribution(dir.path());
        wait_up(&client, &base).await;
        distribution = Some(child);
        targets.push(Target {
            name: "distribution",
            base,
            auth: None,
        });
    }

    let runs = if measuring { 3 } else { 1 };
    let size = mib * 1024 * 1024;
    println!("blob of {mib} MiB, best of {runs} runs; manifest GET by tag with wrk -t2 -c4 -d10s");
    let mut figures = Vec::new();
    for target in &targets {
        let (mut best_push, mut best_pull) = (Duration::MAX, Duration::MAX);
        for run in 0..runs {
            let (data, digest) = blob(mib, run as u64 + 1);
            let repo = format!("bench/blob{run}");
            best_push = best_push.min(push(&client, target, &repo, data, &digest).await);
            best_pull = best_pull.min(pull(&client, target, &repo, &digest, size).await);
        }
        let url = push_manifest(&client, target).await;
        let (rate, p99) = if measuring {
            wrk(&url, target.auth.as_deref(), dir.path())
        } else {
            let started = Instant::now();
            for _ in 0..20 {
                let r = target
                    .request(&client, reqwest::Method::GET, &url)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
            (20.0 / started.elapsed().as_secs_f64(), f64::NAN)
        };
        let figure = (
            mib_per_s(size, best_push),
            mib_per_s(size, best_pull),
            rate,
            p99,
        );
        println!(
            "{:<13} push {:>7.1} MiB/s   pull {:>7.1} MiB/s   manifest by tag {:>8.0} req/s   p99 {:>6.2} ms",
            target.name, figure.0, figure.1, figure.2, figure.3
        );
        figures.push(figure);
    }
    if let [b, d] = figures[..] {
        println!(
            "{:<13} push {:>7.2}x        pull {:>7.2}x        manifest by tag {:>8.2}x",
            "berth/dist",
            b.0 / d.0,
            b.1 / d.1,
            b.2 / d.2
        );
    }
    if let Some(mut child) = distribution {
        let _ = child.kill();
        let _ = child.wait();
    }
}
