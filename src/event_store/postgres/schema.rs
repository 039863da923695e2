//! Migrations for PostgreSQL, and whether they have been applied in this process.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::NoTls;

use crate::event_store::StoreError;
use crate::event_store::error::error_chain;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Held for the whole migration, so that processes starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x4265_7274_6802;

/// Whether the schema is known to be in place, and if not, why.
#[derive(Default)]
pub struct SchemaState {
    ready: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl SchemaState {
    /// Remembers the outcome of a migration attempt.
    pub fn record(&self, result: &Result<(), StoreError>) {
        let error = result.as_ref().err().map(|e| match e {
            StoreError::Unavailable(reason) => reason.clone(),
            other => error_chain(other),
        });
        *self.last_error.lock().expect("schema state lock") = error;
        if result.is_ok() {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Fails with the reason while the schema is not known to be in place.
    pub fn ensure(&self) -> Result<(), StoreError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = self.last_error.lock().expect("schema state lock").clone();
        Err(StoreError::Unavailable(reason.unwrap_or_else(|| {
            "the database schema has not been migrated yet".to_owned()
        })))
    }
}

/// Applies pending migrations on a dedicated connection holding a session advisory lock; the
/// lock goes away with the connection, whatever happens.
pub async fn migrate(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let result = async {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        Ok(())
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}
