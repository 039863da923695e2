//! `berth fsck` finds what is wrong and `--repair` fixes what it safely can: a corrupt blob is
//! quarantined, a manifest whose bytes are gone is deleted with its tag through the log, a
//! stray temporary file is removed, a tampered read model is rebuilt; what only a push can
//! restore is reported until it is pushed again. On SQLite and on PostgreSQL.

mod support;

use berth::config::{DatabaseConfig, Secret};
use berth::event_store::{Backend, EventFilter};
use berth::projections::{self, sql};
use serde_json::Value;
use support::push::{Store, bytes_for, sha256};
use support::server::fsck;

#[tokio::test]
async fn fsck_finds_and_repairs_damage_on_sqlite() {
    fsck_finds_and_repairs_damage(Store::new(false).await).await;
}

#[tokio::test]
async fn fsck_finds_and_repairs_damage_on_postgres() {
    fsck_finds_and_repairs_damage(Store::new(true).await).await;
}

fn blob_path(store: &Store, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    store
        .dir
        .path()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex)
}

/// The findings of `kind`, as `(object, repaired)`.
fn findings(report: &Value, kind: &str) -> Vec<(String, Option<String>)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| {
            let object = f["object"].as_str().unwrap().to_owned();
            (object, f["repaired"].as_str().map(str::to_owned))
        })
        .collect()
}

async fn backend(store: &Store) -> Backend {
    let config = match store.url() {
        Some(url) => DatabaseConfig::Postgres {
            url: Secret::new(url.to_owned()),
            pool_size: 2,
        },
        None => DatabaseConfig::Sqlite {
            path: store.dir.path().join("berth.db"),
            pool_size: 2,
        },
    };
    Backend::open(&config, projections::all()).await.unwrap()
}

async fn fsck_finds_and_repairs_damage(store: Store) {
    let (mut server, client) = store.serve().await;
    client.create_registry("team", "DOCKER").await.unwrap();
    let (kept, kept_bytes) = client.push_image("team/app", "kept", 50_000).await.unwrap();
    let (lost, _) = client.push_image("team/app", "lost", 50_000).await.unwrap();
    let children = [(kept.as_str(), kept_bytes.len())];
    client
        .push_index("team/app", "multi", &children)
        .await
        .unwrap();
    client.create_registry("charts", "HELM").await.unwrap();
    let chart = support::helm::chart("web", "1.0.0", "");
    client.upload_chart("charts", chart).await.unwrap();
    // What a deleted registry held goes with it, in the read models as in the log's fold.
    client.create_registry("gone", "DOCKER").await.unwrap();
    client.push_image("gone/app", "old", 1_000).await.unwrap();
    let deleted = client.send("DELETE", "/api/v1/registries/gone", &[], Vec::new());
    assert_eq!(deleted.await.unwrap().status(), 204);
    // And a push that raced the deletion, appended after it, is in the log and nowhere else.
    support::append_late_push(&backend(&store).await.store(), "gone/app").await;
    client.create_registry("gone", "DOCKER").await.unwrap();
    let layer = bytes_for("team/app:kept", 50_000);
    let layer_digest = sha256(&layer);
    assert!(server.terminate());

    let (code, report) = fsck(store.data_dir(), store.url(), &["--grace", "0s"]);
    assert_eq!(code, 0, "a fresh store is clean: {report:#}");
    assert_eq!(report["summary"]["manifests"], 4, "{report:#}");

    std::fs::write(blob_path(&store, &layer_digest), b"bit rot").unwrap();
    std::fs::remove_file(blob_path(&store, &lost)).unwrap();
    std::fs::write(store.dir.path().join("uploads/.put-left-by-a-crash"), b"x").unwrap();
    let backend = backend(&store).await;
    let tamper = "DELETE FROM repository_tags WHERE tag = 'kept'";
    sql::query(&backend, tamper, Vec::new()).await.unwrap();

    let (code, report) = fsck(store.data_dir(), store.url(), &["--grace", "0s"]);
    assert_eq!(code, 1, "{report:#}");
    let corrupt = findings(&report, "corrupt_blob");
    assert_eq!(corrupt, [(layer_digest.clone(), None)], "{report:#}");
    let missing = findings(&report, "missing_manifest_blob");
    assert_eq!(missing, [(format!("team/app@{lost}"), None)]);
    assert_eq!(findings(&report, "dangling_tag")[0].0, "team/app:lost");
    assert_eq!(
        findings(&report, "temp_file")[0].0,
        "uploads/.put-left-by-a-crash"
    );
    assert_eq!(
        findings(&report, "read_model_mismatch")[0].0,
        "repository_tags"
    );

    let (code, repaired) = fsck(
        store.data_dir(),
        store.url(),
        &["--grace", "0s", "--repair"],
    );
    assert_eq!(
        code, 1,
        "the quarantined layer is left to push again: {repaired:#}"
    );
    for kind in [
        "corrupt_blob",
        "missing_manifest_blob",
        "dangling_tag",
        "temp_file",
        "read_model_mismatch",
        "dangling_link",
    ] {
        let found = findings(&repaired, kind);
        assert!(!found.is_empty(), "no {kind}: {repaired:#}");
        assert!(
            found.iter().all(|(_, how)| how.is_some()),
            "{kind}: {repaired:#}"
        );
    }
    let left = findings(&repaired, "missing_blob");
    assert_eq!(left, [(format!("team/app@{layer_digest}"), None)]);
    let quarantined = std::fs::read_dir(store.dir.path().join("quarantine")).unwrap();
    assert_eq!(quarantined.count(), 1);
    assert!(
        !store
            .dir
            .path()
            .join("uploads/.put-left-by-a-crash")
            .exists()
    );
    let filter = EventFilter {
        actor: Some("fsck".into()),
        ..Default::default()
    };
    let by_fsck = backend.store().read_all(0, &filter, 100).await.unwrap();
    let types: Vec<&str> = by_fsck.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["TagDeleted", "ManifestDeleted"]);

    // Pushing the content again restores what the repair could not.
    let (_server, client) = store.serve().await;
    assert!(client.get("/v2/team/app/manifests/lost").await.is_none());
    let (_, served) = client.get("/v2/team/app/manifests/kept").await.unwrap();
    assert_eq!(served.as_ref(), Some(&kept));
    assert_eq!(
        client.chunked_upload("team/app", &layer).await,
        Some(layer_digest)
    );
    assert_eq!(
        client
            .push_image("team/app", "lost", 50_000)
            .await
            .map(|p| p.0),
        Some(lost)
    );
    let (code, after) = fsck(store.data_dir(), store.url(), &["--grace", "0s"]);
    assert_eq!(code, 0, "{after:#}");
}

#[test]
fn a_repair_refuses_to_run_beside_a_server_and_runs_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut server = support::server::TestServer::start(&["--data-dir", data_dir], &[]);
    let repair = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["fsck", "--repair", "--data-dir", data_dir])
            .env_remove("DATABASE_URL")
            .env("BERTH_LOG", "warn")
            .output()
            .unwrap()
    };
    let refused = repair();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("needs the servers on this data directory stopped"),
        "{said}"
    );
    // The check alone runs beside the server.
    let (code, _) = fsck(data_dir, None, &[]);
    assert_eq!(code, 0);

    assert!(server.terminate());
    let repaired = repair();
    assert_eq!(
        repaired.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
}
