//! Choosing and opening the backend the service runs on.

use std::sync::Arc;

use super::postgres::PgEventStore;
use super::sqlite::SqliteEventStore;
use super::{Projections, SharedEventStore, StoreError};
use crate::config::DatabaseConfig;

/// The store the service runs on, keeping its concrete type for read-model queries.
#[derive(Clone)]
pub enum Backend {
    /// PostgreSQL, selected by a `postgres://` DATABASE_URL.
    Postgres(Arc<PgEventStore>),
    /// The embedded SQLite file in the data directory.
    Sqlite(Arc<SqliteEventStore>),
}

impl Backend {
    /// Opens the store and applies migrations, failing if the database does not answer.
    /// For commands and tests that need the database now.
    pub async fn open(
        config: &DatabaseConfig,
        projections: Projections,
    ) -> Result<Self, StoreError> {
        match config {
            DatabaseConfig::Postgres { url, pool_size } => Ok(Self::Postgres(
                PgEventStore::open(url.expose(), *pool_size, projections).await?,
            )),
            DatabaseConfig::Sqlite { path, pool_size } => Ok(Self::Sqlite(
                SqliteEventStore::open(path, *pool_size, projections).await?,
            )),
        }
    }

    /// Opens the store for a long-running server: an unreachable PostgreSQL does not stop the
    /// server from starting; it reports not ready and keeps retrying in the background.
    pub async fn start(
        config: &DatabaseConfig,
        projections: Projections,
    ) -> Result<Self, StoreError> {
        match config {
            DatabaseConfig::Postgres { url, pool_size } => {
                let store = PgEventStore::new(url.expose(), *pool_size, projections)?;
                store.spawn_maintenance();
                Ok(Self::Postgres(store))
            }
            DatabaseConfig::Sqlite { .. } => Self::open(config, projections).await,
        }
    }

    /// The event store behind this backend.
    pub fn store(&self) -> SharedEventStore {
        match self {
            Self::Postgres(store) => store.clone(),
            Self::Sqlite(store) => store.clone(),
        }
    }
}
