//! Shared test harness: a fresh PostgreSQL database or SQLite file per test, and a real
//! `berth serve` process on a free port.
#![allow(dead_code)]

/// Defines each listed test once per backend: `sqlite::name` and `postgres::name`, each
/// calling `name(TestApp)` with a server on that backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestApp::spawn(super::Db::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestApp::spawn(super::Db::Postgres).await).await
                }
            )*
        }
    };
}

pub mod app;
pub mod clients;
pub mod cluster;
pub mod containerd;
pub mod helm;
pub mod oci;
pub mod podman;
pub mod postgres;
pub mod push;
pub mod server;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;

use berth::config::DatabaseConfig;
use berth::event_store::{
    AppendRequest, Backend, ExpectedVersion, Metadata, NewEvent, Projections, SharedEventStore,
    StreamId,
};

/// A store opened on a fresh database, with what is needed to reach that database directly.
pub struct StoreFixture {
    /// The opened backend.
    pub backend: Backend,
    /// How to reach the same database without Berth.
    pub raw: RawDatabase,
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

/// Direct access to a test database.
#[derive(Clone)]
pub enum RawDatabase {
    /// A PostgreSQL database URL.
    Postgres(String),
    /// A SQLite file.
    Sqlite(PathBuf),
}

impl StoreFixture {
    /// A fresh SQLite database in a temporary directory.
    pub async fn sqlite(projections: Projections) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("berth.db");
        let config = DatabaseConfig::Sqlite {
            path: path.clone(),
            pool_size: 8,
        };
        let backend = Backend::open(&config, projections)
            .await
            .expect("open sqlite store");
        Self {
            backend,
            raw: RawDatabase::Sqlite(path),
            _guard: Box::new(dir),
        }
    }

    /// A fresh PostgreSQL database of its own.
    pub async fn postgres(projections: Projections) -> Self {
        let db = postgres::TestDatabase::create().await;
        let config = DatabaseConfig::Postgres {
            url: berth::config::Secret::new(db.url.clone()),
            pool_size: 16,
        };
        let backend = Backend::open(&config, projections)
            .await
            .expect("open postgres store");
        Self {
            backend,
            raw: RawDatabase::Postgres(db.url.clone()),
            _guard: Box::new(Arc::new(db)),
        }
    }
}

/// Appends every event of repository `name` once more, as a push that raced the deletion of
/// its registry and landed after it would.
pub async fn append_late_push(store: &SharedEventStore, name: &str) {
    let stream = StreamId::new("repository", name);
    let pushed = store
        .read_stream(&stream, None)
        .await
        .expect("read the stream");
    let events = pushed
        .iter()
        .map(|e| NewEvent::new(e.event_type.clone(), e.schema_version, e.payload.clone()))
        .collect();
    let request = AppendRequest {
        stream,
        expected: ExpectedVersion::Any,
        events,
        metadata: Metadata::default(),
        fingerprint: None,
    };
    store.append(request).await.expect("append the late push");
}
