//! `index.yaml` of a Helm registry with many chart versions, on SQLite and PostgreSQL: the time
//! to first byte and to the last byte when the index is cached, the 304 answer to its entity
//! tag, and the time to first byte right after an upload invalidated it (so the index is
//! rendered again from the read model).
//!
//! `make bench` records 10,000 chart versions (100 charts of 100 versions; `BENCH_CHARTS`
//! sets the number) as push events, then measures over HTTP. Under `cargo test` it runs on 300
//! versions only, to prove it still works.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use berth::app::{App, Context, ManifestPush};
use berth::domain::chart::ChartRecord;
use berth::domain::oci::{Digest, RepositoryName, Tag};
use berth::domain::repository::ManifestRecord;
use berth::secrets::SecretBox;
use serde_json::json;
use sha2::Digest as _;
use support::app::{Db, TestApp};
use support::helm::chart;

const VERSIONS_PER_CHART: usize = 100;

fn digest_of(text: &str) -> Digest {
    Digest::from_sha256(&sha2::Sha256::digest(text.as_bytes()))
}

/// Records `versions` chart versions in registry `charts`, as uploads would.
async fn fill(server: &TestApp, versions: usize) {
    let app = App::new(
        server.backend.clone(),
        SecretBox::load(None, server.data_dir.path()).unwrap(),
    );
    let ctx = Context {
        actor: "bench".into(),
        ..Default::default()
    };
    let started = Instant::now();
    for i in 0..versions {
        let name = format!("chart-{:03}", i / VERSIONS_PER_CHART);
        let version = format!("1.{}.{}", (i % VERSIONS_PER_CHART) / 10, i % 10);
        let metadata = json!({
            "apiVersion": "v2", "name": name, "version": version, "appVersion": "2.4.1",
            "description": "A chart for the benchmark, with the fields real charts carry",
            "home": "https://example.org", "icon": "https://example.org/icon.png",
            "keywords": ["web", "http", "bench"], "type": "application",
            "maintainers": [{"name": "Platform team", "email": "platform@example.org"}],
            "sources": ["https://example.org/src"],
            "annotations": {"category": "Infrastructure"},
            "dependencies": [{"name": "db", "version": "1.x.x", "repository": "https://charts.example.org"}],
        });
        let repository = RepositoryName::parse(&format!("charts/{name}")).unwrap();
        let push = ManifestPush {
            digest: digest_of(&format!("manifest {i}")),
            record: ManifestRecord {
                media_type: berth::domain::manifest::OCI_MANIFEST.into(),
                size: 600,
                subject: None,
                artifact_type: Some(berth::domain::chart::CONFIG_MEDIA_TYPE.into()),
                chart: Some(ChartRecord {
                    name: name.clone(),
                    version: version.clone(),
                    archive: digest_of(&format!("archive {i}")),
                    provenance: None,
                    metadata,
                }),
            },
            tag: Some(Tag::parse(&version).unwrap()),
            missing: vec![],
        };
        app.push_manifest(&ctx, &repository, push).await.unwrap();
    }
    println!(
        "  recorded {versions} chart versions in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "  {name:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} runs)",
        at(0.5),
        at(0.99),
        samples.len()
    );
}

/// Time to the response head and to the last byte of one GET of the index.
async fn get_index(server: &TestApp, token: &str, etag: Option<&str>) -> (Duration, Duration, u16) {
    let started = Instant::now();
    let mut request = server
        .client
        .get(server.url("/helm/charts/index.yaml"))
        .bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    let response = request.send().await.unwrap();
    let first = started.elapsed();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    assert!(status == 304 || body.starts_with(b"apiVersion: v1"));
    (first, started.elapsed(), status)
}

async fn measure(db: Db, versions: usize, runs: usize) {
    println!("{db:?}:");
    let server = TestApp::spawn(db).await;
    let created = server
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "charts", "package_type": "HELM"})),
        )
        .await;
    assert_eq!(created.status, 201);
    fill(&server, versions).await;
    let token = server.admin();

    let (cold, _, _) = get_index(&server, &token, None).await;
    let response = server
        .call_as(&token, "GET", "/helm/charts/index.yaml", None, &[])
        .await;
    let etag = response.header("etag").unwrap().to_owned();
    let listed = response.text.matches("\n  - ").count();
    println!(
        "  index: {} bytes, {listed} versions; first render {:.1} ms",
        response.text.len(),
        cold.as_secs_f64() * 1000.0
    );

    let (mut first, mut last, mut not_modified) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (head, whole, _) = get_index(&server, &token, None).await;
        first.push(head);
        last.push(whole);
        let (head, _, status) = get_index(&server, &token, Some(&etag)).await;
        assert_eq!(status, 304);
        not_modified.push(head);
    }
    report("cached: time to first byte", first);
    report("cached: time to last byte", last);
    report("cached: If-None-Match -> 304", not_modified);

    let mut after_upload = Vec::new();
    for i in 0..(runs / 10).max(3) {
        let bytes = chart("fresh", &format!("0.0.{i}"), "");
        let uploaded = server
            .client
            .post(server.url("/helm/charts/api/charts"))
            .bearer_auth(&token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 201);
        let (head, _, _) = get_index(&server, &token, None).await;
        after_upload.push(head);
    }
    report("after an upload: time to first byte", after_upload);
}

#[tokio::main]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let versions: usize = std::env::var("BENCH_CHARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 10_000 } else { 300 });
    let runs = if measuring { 200 } else { 5 };
    println!("index.yaml with {versions} chart versions");
    measure(Db::Sqlite, versions, runs).await;
    measure(Db::Postgres, versions, runs).await;
}
