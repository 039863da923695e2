//! Berth side by side with CNCF Distribution (the `docker-registry` package, filesystem
//! storage, on 127.0.0.1), in one run on one machine: push and pull of a 256 MiB blob (MB/s)
//! and manifest GET by tag (requests/s and p99 with wrk, 4 connections).
//!
//! `make bench` runs it in full (it needs `docker-registry` and `wrk`, which `make bench`
//! installs). Under `cargo test` it pushes and pulls a small blob through Berth only, to prove
//! the harness still works. `BENCH_BLOB_MIB` sets the blob size.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::time::{Duration, Instant};

use common::{
    Target, blob, mib_per_s, pull, push, push_manifest, start_distribution, wait_up, wrk,
};
use serde_json::json;
use support::server::{TestServer, mint_token};

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
