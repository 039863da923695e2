//! Audit query latency on PostgreSQL with a large log: a filtered page of 100 events and one
//! resource's history, in process and over HTTP.
//!
//! `make bench` fills a fresh database with 1,000,000 events (10,000 registries with 100
//! changes each, 50 actors) by bulk SQL, then times each query. `BENCH_EVENTS` sets the size.
//! Under `cargo test` it runs on a small log only, to prove it still works.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use berth::config::{DatabaseConfig, Secret};
use berth::event_store::{Backend, EventFilter};
use support::app::TestApp;
use support::postgres::TestDatabase;

const PER_STREAM: i64 = 100;

async fn fill(url: &str, events: i64) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let streams = (events / PER_STREAM).max(1);
    let started = Instant::now();
    // Interleave streams, as a real log would be: event n belongs to stream n % streams.
    client
        .batch_execute(&format!(
            "INSERT INTO events (category, stream_name, stream_version, event_id, event_type, \
             schema_version, payload, actor, correlation_id, recorded_at)
             SELECT 'registry', 'r' || (n % {streams}), n / {streams} + 1, gen_random_uuid(),
                    CASE WHEN n / {streams} = 0 THEN 'RegistryCreated' ELSE 'RegistryDescribed' END,
                    1,
                    CASE WHEN n / {streams} = 0
                      THEN jsonb_build_object('name', 'r' || (n % {streams}), 'package_type', 'DOCKER',
                           'description', NULL, 'labels', '[]'::jsonb, 'upstreams', '[]'::jsonb)
                      ELSE jsonb_build_object('description', 'change ' || n) END,
                    'actor-' || (n % 50), 'req-' || n,
                    timestamptz '2026-01-01' + n * interval '10 milliseconds'
             FROM generate_series(0, {events} - 1) AS n;
             ANALYZE events;"
        ))
        .await
        .unwrap();
    println!(
        "filled {events} events in {} streams in {:.1}s",
        streams,
        started.elapsed().as_secs_f64()
    );
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{name:<44} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} runs)",
        at(0.5),
        at(0.99),
        samples.len()
    );
}

async fn time<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        f(i).await;
        samples.push(started.elapsed());
    }
    samples
}

#[tokio::main]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let events: i64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 2_000 });
    let runs = if measuring { 200 } else { 5 };
    let db = TestDatabase::create().await;
    let database = DatabaseConfig::Postgres {
        url: Secret::new(db.url.clone()),
        pool_size: 8,
    };
    let backend = Backend::open(&database, berth::projections::all())
        .await
        .unwrap();
    fill(&db.url, events).await;
    let store = backend.store();
    let streams = (events / PER_STREAM).max(1) as usize;

    let by_actor = time(runs, |i| {
        let store = store.clone();
        async move {
            let filter = EventFilter {
                actor: Some(format!("actor-{}", i % 50)),
                event_types: vec!["RegistryDescribed".into()],
                ..Default::default()
            };
            let after = (i as i64 * 997) % (events / 2).max(1);
            let page = store.read_all(after as u64, &filter, 100).await.unwrap();
            assert!(!page.is_empty());
        }
    })
    .await;
    report("events: actor + type, page of 100", by_actor);

    let by_stream = time(runs, |i| {
        let store = store.clone();
        async move {
            let filter = EventFilter {
                category: Some("registry".into()),
                stream_name: Some(format!("r{}", i % streams)),
                ..Default::default()
            };
            let page = store.read_all(0, &filter, 100).await.unwrap();
            assert_eq!(page.len() as i64, PER_STREAM.min(100));
        }
    })
    .await;
    report("events: one resource, page of 100", by_stream);

    let app = TestApp::on_database(database.clone()).await;
    let token = app.admin();
    let http_events = time(runs, |i| {
        let (app, token) = (&app, &token);
        async move {
            let path = format!(
                "/api/v1/events?actor=actor-{}&type=RegistryDescribed&limit=100",
                i % 50
            );
            let response = app.call_as(token, "GET", &path, None, &[]).await;
            assert!(!response.body["items"].as_array().unwrap().is_empty());
        }
    })
    .await;
    report("HTTP GET /events?actor&type&limit=100", http_events);

    let http_history = time(runs, |i| {
        let (app, token) = (&app, &token);
        async move {
            let path = format!("/api/v1/registries/r{}/history", i % streams);
            let response = app.call_as(token, "GET", &path, None, &[]).await;
            assert_eq!(response.status, 200, "{}", response.text);
            assert_eq!(
                response.body["items"].as_array().unwrap().len() as i64,
                PER_STREAM.min(100)
            );
        }
    })
    .await;
    report("HTTP GET /registries/{name}/history (100)", http_history);
}
