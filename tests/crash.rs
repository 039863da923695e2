//! Crash consistency: `berth serve` is killed with SIGKILL while blob uploads, manifest pushes
//! and control-plane creates are in flight, several times, and restarted on the same data
//! directory and database. Every acknowledged write must still be there and read back with its
//! digest, every tag must resolve, an interrupted upload must resume where it was
//! acknowledged, and `berth fsck` must find nothing but the leftovers a crash is allowed to
//! leave (and `--repair` must remove those).

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::push::{Pusher, Store, bytes_for, sha256};
use support::server::fsck;

/// How many times the server is killed.
const ROUNDS: u64 = 3;
/// Concurrent image pushers.
const PUSHERS: usize = 3;

/// What the server acknowledged.
#[derive(Default)]
struct Acked {
    registries: Vec<String>,
    blobs: Vec<(String, String)>,
    manifests: Vec<(String, String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_flight_loses_no_acknowledged_write_on_sqlite() {
    sigkill_mid_flight_loses_no_acknowledged_write(Store::new(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_flight_loses_no_acknowledged_write_on_postgres() {
    sigkill_mid_flight_loses_no_acknowledged_write(Store::new(true).await).await;
}

async fn sigkill_mid_flight_loses_no_acknowledged_write(store: Store) {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let (mut server, client) = store.serve().await;
    client
        .create_registry("crash", "DOCKER")
        .await
        .expect("registry");
    server.terminate();
    let mut interrupted = None;
    for round in 0..ROUNDS {
        let (mut server, client) = store.serve().await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for worker in 0..PUSHERS {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            workers.push(tokio::spawn(push_images(
                client, worker, round, acked, stop,
            )));
        }
        let (client2, acked2, stop2) = (client.clone(), acked.clone(), stop.clone());
        workers.push(tokio::spawn(create_registries(
            client2, round, acked2, stop2,
        )));
        if round == ROUNDS - 1 {
            interrupted = Some(start_and_leave_an_upload(&client).await);
        }
        // Kill at a different moment each round.
        tokio::time::sleep(Duration::from_millis(300 + 250 * round)).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.expect("worker");
        }
    }
    let (server, client) = store.serve().await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.manifests.len() >= PUSHERS && acked.registries.len() >= ROUNDS as usize,
        "too little was acknowledged to mean anything: {} manifests, {} registries",
        acked.manifests.len(),
        acked.registries.len()
    );
    eprintln!(
        "acknowledged before {ROUNDS} kills: {} registries, {} blobs, {} manifests",
        acked.registries.len(),
        acked.blobs.len(),
        acked.manifests.len()
    );
    for name in &acked.registries {
        let path = format!("/api/v1/registries/{name}");
        assert!(client.get_json(&path).await.is_some(), "{name} is gone");
    }
    for (repository, digest) in &acked.blobs {
        let (bytes, _) = client
            .get(&format!("/v2/{repository}/blobs/{digest}"))
            .await
            .unwrap_or_else(|| panic!("blob {digest} of {repository} is gone"));
        assert_eq!(&sha256(&bytes), digest);
    }
    for (repository, tag, digest) in &acked.manifests {
        let (bytes, served) = client
            .get(&format!("/v2/{repository}/manifests/{tag}"))
            .await
            .unwrap_or_else(|| panic!("{repository}:{tag} is gone"));
        assert_eq!((&sha256(&bytes), served.as_ref()), (digest, Some(digest)));
    }
    every_tag_resolves(&client).await;
    every_left_upload_answers(&client, &store).await;
    resume(&client, interrupted.expect("an interrupted upload")).await;

    // Safe while the server runs: what a crash left is younger than the grace period.
    let (code, report) = fsck(store.data_dir(), store.url(), &[]);
    assert_eq!(code, 0, "{report:#}");
    drop(server);
    let (_, report) = fsck(store.data_dir(), store.url(), &["--grace", "0s"]);
    eprintln!("left by the kills: {:?}", kinds(&report));
    let allowed = ["temp_file", "dead_upload", "open_upload"];
    for finding in report["findings"].as_array().unwrap() {
        assert!(
            allowed.contains(&finding["kind"].as_str().unwrap()),
            "a crash left more than leftovers: {report:#}"
        );
    }
    let (code, repaired) = fsck(
        store.data_dir(),
        store.url(),
        &["--grace", "0s", "--repair"],
    );
    assert_eq!(code, 0, "{repaired:#}");
    let (code, after) = fsck(store.data_dir(), store.url(), &["--grace", "0s"]);
    assert_eq!(code, 0, "{after:#}");
    assert!(
        kinds(&after).iter().all(|k| k == "open_upload"),
        "{after:#}"
    );
}

/// Pushes images to `crash/app<worker>` until told to stop, recording what was acknowledged.
async fn push_images(
    client: Pusher,
    worker: usize,
    round: u64,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let repository = format!("crash/app{worker}");
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tag = format!("r{round}-{n}");
        match client.push_image(&repository, &tag, 96 * 1024).await {
            Some((digest, _)) => {
                acked
                    .lock()
                    .unwrap()
                    .manifests
                    .push((repository.clone(), tag, digest))
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        let blob = bytes_for(&format!("{repository}/{round}/{n}"), 64 * 1024);
        if let Some(digest) = client.chunked_upload(&repository, &blob).await {
            acked
                .lock()
                .unwrap()
                .blobs
                .push((repository.clone(), digest));
        }
    }
}

/// Creates registries until told to stop, recording what was acknowledged.
async fn create_registries(
    client: Pusher,
    round: u64,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("cp-{round}-{n}");
        match client.create_registry(&name, "DOCKER").await {
            Some(()) => acked.lock().unwrap().registries.push(name),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// An upload whose first half was acknowledged, left open: its location and its bytes.
async fn start_and_leave_an_upload(client: &Pusher) -> (String, Vec<u8>) {
    let bytes = bytes_for("interrupted", 300_000);
    let location = client.start_upload("crash/resume").await.expect("started");
    client
        .patch(&location, 0, &bytes[..150_000])
        .await
        .expect("first half");
    (location, bytes)
}

/// Resumes the interrupted upload where the server says it stands, and finishes it.
async fn resume(client: &Pusher, (location, bytes): (String, Vec<u8>)) {
    let status = client
        .send("GET", &location, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-149999");
    client
        .patch(&location, 150_000, &bytes[150_000..])
        .await
        .expect("the rest");
    let digest = sha256(&bytes);
    let put = format!("{location}?digest={digest}");
    let done = client.send("PUT", &put, &[], Vec::new()).await.unwrap();
    assert_eq!(done.status(), 201);
    let (stored, _) = client
        .get(&format!("/v2/crash/resume/blobs/{digest}"))
        .await
        .expect("the resumed blob");
    assert_eq!(stored, bytes);
}

/// Every tag of every pushed repository resolves to a manifest whose bytes hash to its digest,
/// acknowledged or not.
async fn every_tag_resolves(client: &Pusher) {
    for worker in 0..PUSHERS {
        let repository = format!("crash/app{worker}");
        let Some(list) = client
            .get_json(&format!("/v2/{repository}/tags/list"))
            .await
        else {
            continue;
        };
        for tag in list["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().unwrap();
            let (bytes, digest) = client
                .get(&format!("/v2/{repository}/manifests/{tag}"))
                .await
                .unwrap_or_else(|| panic!("{repository}:{tag} points at nothing"));
            assert_eq!(Some(sha256(&bytes)), digest);
        }
    }
}

/// Every upload session the kills left answers where it stands (204, so it can be resumed) or
/// that it is unknown (404, so the client starts again); none is a server error.
async fn every_left_upload_answers(client: &Pusher, store: &Store) {
    let uploads = store.dir.path().join("uploads");
    for entry in std::fs::read_dir(uploads).unwrap() {
        let path = entry.unwrap().path();
        // A kill between creating a session's files and writing its repository leaves the name
        // missing or empty: no client can address that session, and fsck counts it a leftover.
        let Ok(repository) = std::fs::read_to_string(path.join("repository")) else {
            continue;
        };
        let repository = repository.trim();
        if repository.is_empty() {
            continue;
        }
        let id = path.file_name().unwrap().to_str().unwrap();
        let location = format!("/v2/{repository}/blobs/uploads/{id}");
        let status = client
            .send("GET", &location, &[], Vec::new())
            .await
            .unwrap();
        assert!(
            [204, 404].contains(&status.status().as_u16()),
            "{location}: {}",
            status.status()
        );
    }
}

fn kinds(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["kind"].as_str().map(str::to_owned))
        .collect()
}
