//! The event store on an embedded SQLite file, through rusqlite and a deadpool connection pool.
//!
//! WAL mode lets readers run beside the one writer. Appends run in `BEGIN IMMEDIATE`
//! transactions, so the write lock is taken before the stream version is read; inside this
//! process they also queue on an async mutex, so they wait their turn instead of spinning on
//! SQLite's busy handler. Positions are therefore committed in order, as on PostgreSQL.

mod rows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::{Config, Hook, HookError, Pool, Runtime};
use rusqlite::{Connection, TransactionBehavior};
use time::OffsetDateTime;
use tokio::sync::{Mutex, broadcast};

use super::{
    AppendOutcome, AppendRequest, EventFilter, EventStore, MAX_PAGE, Position, Progress,
    Projections, RecordedEvent, StoreError, StreamId, check_expected, check_fingerprint,
};
use rows::{EVENT_COLUMNS, FilterSql, event_from_row, insert_events, replay_command};
pub use rows::{from_micros, micros};

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// Set on every connection the pool opens.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
    PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";
/// How many events a rebuild reads at a time.
const REBUILD_BATCH: i64 = 2_000;

/// The SQLite event store.
pub struct SqliteEventStore {
    pool: Pool,
    write_lock: Mutex<()>,
    projections: Projections,
    notifier: broadcast::Sender<Position>,
}

impl SqliteEventStore {
    /// Opens (creating if needed) the database file, applies migrations, and returns the store.
    pub async fn open(
        path: &Path,
        pool_size: usize,
        projections: Projections,
    ) -> Result<Arc<Self>, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = Config::new(path)
            .builder(Runtime::Tokio1)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .max_size(pool_size.max(2))
            .wait_timeout(Some(Duration::from_secs(10)))
            .post_create(Hook::async_fn(|conn, _| {
                Box::pin(async move {
                    conn.interact(|c| c.execute_batch(PRAGMAS))
                        .await
                        .map_err(|e| HookError::message(e.to_string()))?
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let conn = pool.get().await?;
        conn.interact(|c: &mut Connection| {
            embedded::migrations::runner()
                .run(c)
                .map_err(|e| StoreError::Database(Box::new(e)))
        })
        .await??;
        drop(conn);
        let (notifier, _) = broadcast::channel(1024);
        Ok(Arc::new(Self {
            pool,
            write_lock: Mutex::new(()),
            projections,
            notifier,
        }))
    }

    /// The connection pool, for the read-model queries that live beside this store.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn with_conn<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.pool.get().await?;
        conn.interact(f).await?
    }
}

fn apply_projections(
    projections: &Projections,
    tx: &rusqlite::Transaction<'_>,
    event: &RecordedEvent,
) -> Result<(), StoreError> {
    for projection in projections.iter() {
        projection
            .apply_sqlite(tx, event)
            .map_err(|source| StoreError::projection(projection.name(), event.position, source))?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let _turn = self.write_lock.lock().await;
        let projections = Arc::clone(&self.projections);
        let outcome = self
            .with_conn(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(command_id) = request.metadata.command_id
                    && let Some((outcome, fingerprint)) = replay_command(&tx, command_id)?
                {
                    tx.commit()?;
                    check_fingerprint(
                        command_id,
                        fingerprint.as_deref(),
                        request.fingerprint.as_deref(),
                    )?;
                    return Ok(outcome);
                }
                let actual: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(stream_version), 0) FROM events \
                     WHERE category = ?1 AND stream_name = ?2",
                    (&request.stream.category, &request.stream.name),
                    |row| row.get(0),
                )?;
                let actual = actual as u64;
                check_expected(&request.stream, request.expected, actual)?;
                let recorded = insert_events(&tx, &request, actual)?;
                for event in &recorded {
                    apply_projections(&projections, &tx, event)?;
                }
                tx.commit()?;
                Ok(AppendOutcome {
                    stream_version: actual + recorded.len() as u64,
                    events: recorded,
                    replayed: false,
                })
            })
            .await?;
        if let Some(last) = outcome.events.last().filter(|_| !outcome.replayed) {
            let _ = self.notifier.send(last.position);
        }
        Ok(outcome)
    }

    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<(AppendOutcome, Option<String>)>, StoreError> {
        self.with_conn(move |conn| replay_command(conn, command_id))
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        until: Option<OffsetDateTime>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        let until = until.map(micros).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE category = ?1 AND stream_name = ?2 \
                 AND recorded_at <= ?3 ORDER BY stream_version"
            ))?;
            let rows = statement.query_map((&stream.category, &stream.name, until), |row| {
                Ok(event_from_row(row))
            })?;
            rows.map(|row| row?).collect()
        })
        .await
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let FilterSql { sql, params } = FilterSql::new(after, filter, limit.clamp(1, MAX_PAGE));
        self.with_conn(move |conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(params.iter()), |row| {
                Ok(event_from_row(row))
            })?;
            rows.map(|row| row?).collect()
        })
        .await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.with_conn(|conn| {
            let head: i64 =
                conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
                    row.get(0)
                })?;
            Ok(head as Position)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT COUNT(*) FROM refinery_schema_history", [], |_| {
                Ok(())
            })?;
            Ok(())
        })
        .await
    }

    async fn rebuild_projections(&self, progress: Progress<'_>) -> Result<u64, StoreError> {
        let _turn = self.write_lock.lock().await;
        let projections = Arc::clone(&self.projections);
        let (report, mut updates) = tokio::sync::mpsc::unbounded_channel();
        let work = self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for projection in projections.iter() {
                for table in projection.tables() {
                    tx.execute(&format!("DELETE FROM {table}"), [])?;
                }
            }
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
            let (mut done, mut after) = (0u64, 0i64);
            loop {
                let batch: Vec<RecordedEvent> = {
                    let mut page = tx.prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 \
                         ORDER BY position LIMIT ?2"
                    ))?;
                    let rows =
                        page.query_map((after, REBUILD_BATCH), |row| Ok(event_from_row(row)))?;
                    rows.map(|row| row?).collect::<Result<_, StoreError>>()?
                };
                let Some(last) = batch.last() else { break };
                after = last.position as i64;
                for event in &batch {
                    apply_projections(&projections, &tx, event)?;
                }
                done += batch.len() as u64;
                let _ = report.send((done, total as u64));
            }
            tx.commit()?;
            Ok(done)
        });
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => {
                    while let Ok((done, total)) = updates.try_recv() {
                        progress(done, total);
                    }
                    return result;
                }
                Some((done, total)) = updates.recv() => progress(done, total),
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Position> {
        self.notifier.subscribe()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
