//! Append throughput of the event store on each backend: single-event appends per second,
//! one writer in sequence and eight concurrent writers on different streams.
//!
//! Run with `make bench` (PostgreSQL as in the tests). `BENCH_APPENDS` sets appends per run.
//! Under `cargo test` it runs a few appends only, to prove it still works.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use berth::event_store::{
    AppendRequest, ExpectedVersion, Metadata, NewEvent, SharedEventStore, StreamId,
};
use serde_json::json;
use support::StoreFixture;

async fn appends(store: SharedEventStore, stream: StreamId, count: u64) {
    for n in 0..count {
        store
            .append(AppendRequest {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(n),
                events: vec![NewEvent::new(
                    "RegistryUpdated",
                    1,
                    json!({ "description": format!("change {n}"), "labels": ["bench"] }),
                )],
                metadata: Metadata {
                    actor: Some("bench".into()),
                    correlation_id: Some(format!("req-{n}")),
                    causation_id: None,
                    command_id: Some(uuid::Uuid::now_v7()),
                },
                fingerprint: None,
            })
            .await
            .expect("append");
    }
}

async fn run(name: &str, fixture: StoreFixture, total: u64) {
    let store = fixture.backend.store();
    let started = Instant::now();
    appends(store.clone(), StreamId::new("bench", "sequential"), total).await;
    let sequential = total as f64 / started.elapsed().as_secs_f64();

    let writers = 8;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            tokio::spawn(appends(
                store.clone(),
                StreamId::new("bench", format!("writer-{w}")),
                total / writers,
            ))
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let concurrent = (total / writers * writers) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{name:<10} {total:>6} appends   sequential {sequential:>8.0}/s   8 writers {concurrent:>8.0}/s"
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a quick smoke test.
    let measuring = std::env::args().any(|a| a == "--bench");
    let total: u64 = std::env::var("BENCH_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 4_000 } else { 16 });
    println!("event store append throughput (single-event appends with inline projections)");
    run(
        "sqlite",
        StoreFixture::sqlite(berth::projections::all()).await,
        total,
    )
    .await;
    run(
        "postgres",
        StoreFixture::postgres(berth::projections::all()).await,
        total,
    )
    .await;
}
