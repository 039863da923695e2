//! Memory stays flat whatever the blob size: a 1 GiB blob is pushed and pulled through a real
//! `berth serve` process, and its peak resident memory is read from /proc.

mod support;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use support::server::{TestServer, mint_token};

const CHUNK: usize = 1024 * 1024;
const CHUNKS: usize = 1024;

fn chunk(i: usize) -> Vec<u8> {
    let mut bytes = vec![(i % 251) as u8; CHUNK];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_blob_is_pushed_and_pulled_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let token = mint_token(&data_dir, "big", "admin");
    let server = TestServer::start(&["--data-dir", &data_dir], &[]);
    let client = reqwest::Client::new();
    let base = server.base_url.clone();
    let created = client
        .post(format!("{base}/api/v1/registries"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "big", "package_type": "DOCKER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let baseline = server.peak_rss();

    let started = client
        .post(format!("{base}/v2/big/blob/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let feeding = hasher.clone();
    let body = futures_util::stream::iter(0..CHUNKS).map(move |i| {
        let bytes = chunk(i);
        feeding.lock().unwrap().update(&bytes);
        Ok::<_, std::io::Error>(bytes)
    });
    let patched = client
        .patch(format!("{base}{location}"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 202);
    assert_eq!(
        patched.headers()["range"],
        format!("0-{}", CHUNK * CHUNKS - 1).as_str()
    );
    let digest = format!("sha256:{:x}", hasher.lock().unwrap().clone().finalize());
    let put = client
        .put(format!("{base}{location}?digest={digest}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    let pulled = client
        .get(format!("{base}/v2/big/blob/blobs/{digest}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let mut stream = pulled.bytes_stream();
    let mut check = Sha256::new();
    let mut total = 0usize;
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        total += piece.len();
        check.update(&piece);
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert_eq!(format!("sha256:{:x}", check.finalize()), digest);

    let peak = server.peak_rss();
    assert!(
        peak < 64 * 1024 * 1024,
        "peak RSS {} MiB (baseline {} MiB) while moving 1 GiB",
        peak / (1024 * 1024),
        baseline / (1024 * 1024)
    );
    println!(
        "peak RSS {:.1} MiB (baseline {:.1} MiB) for a 1 GiB push and pull",
        peak as f64 / 1048576.0,
        baseline as f64 / 1048576.0
    );
}
