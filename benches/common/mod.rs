//! What the benchmarks share: registries under test, blobs made up on the spot, pushes and
//! pulls over HTTP, CNCF Distribution started beside Berth, and wrk for request rates.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A registry under test: its base URL and the header that authorises requests.
pub struct Target {
    /// What to call it in the figures.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The `Authorization` header, if any.
    pub auth: Option<String>,
}

impl Target {
    /// A request to `url` (a path, or a whole URL), authorised.
    pub fn request(
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

/// A blob of `mib` MiB made from `seed`, and its digest.
pub fn blob(mib: usize, seed: u64) -> (bytes::Bytes, String) {
    let mut data = vec![0u8; mib * 1024 * 1024];
    for (i, chunk) in data.chunks_mut(8).enumerate() {
        let word = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    (data.into(), digest)
}

/// Pushes `data` to `repo` in one upload (POST, then PUT); how long it took.
pub async fn push(
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

/// Pulls blob `digest` of `repo` whole, checking its size; how long it took.
pub async fn pull(
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

/// Pushes an image manifest tagged `latest` to `bench/app`; its URL.
pub async fn push_manifest(client: &reqwest::Client, target: &Target) -> String {
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
pub fn wrk(url: &str, auth: Option<&str>, dir: &std::path::Path) -> (f64, f64) {
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

/// A wrk latency (`512.00us`, `1.20ms`) in milliseconds.
pub fn parse_latency(value: &str) -> f64 {
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

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts CNCF Distribution with filesystem storage under `dir`; the process and its URL.
pub fn start_distribution(dir: &std::path::Path) -> (Child, String) {
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

/// Waits until the registry at `base` answers.
pub async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/v2/")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{base} did not come up");
}

/// MiB/s for `size` bytes in `took`.
pub fn mib_per_s(size: usize, took: Duration) -> f64 {
    size as f64 / 1048576.0 / took.as_secs_f64()
}
