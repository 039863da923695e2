//! The event store on PostgreSQL, through tokio-postgres and a deadpool connection pool.
//!
//! Global order: every append takes one transaction-scoped advisory lock
//! (`pg_advisory_xact_lock(APPEND_LOCK)`) before it reads the stream version or draws a position.
//! Appends therefore commit one at a time, in position order, and PostgreSQL makes a commit
//! visible before it releases the transaction's locks: a reader that has seen position P can never
//! later find a committed event with a position below P. Rolled-back appends leave gaps, never
//! late arrivals. The same lock makes the expected-version and idempotency checks race-free; the
//! unique constraints on `(category, stream_name, stream_version)` and `event_id` stay as a backstop.

mod listener;
mod rows;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::{
    AppendOutcome, AppendRequest, EventFilter, EventStore, MAX_PAGE, Position, Progress,
    Projections, RecordedEvent, StoreError, StreamId, check_expected, check_fingerprint,
};
use rows::{EVENT_COLUMNS, as_i64, event_from_row, insert_error};
use schema::SchemaState;

/// The advisory lock every append holds until it commits.
const APPEND_LOCK: i64 = 0x4265_7274_6801;
/// The notification channel that carries the newest committed position.
const CHANNEL: &str = "berth_events";
/// How many events a rebuild reads at a time.
const REBUILD_BATCH: i64 = 2_000;

/// The PostgreSQL event store.
pub struct PgEventStore {
    pool: Pool,
    config: tokio_postgres::Config,
    projections: Projections,
    notifier: broadcast::Sender<Position>,
    schema: SchemaState,
}

impl PgEventStore {
    /// Prepares a store for `url` without touching the database; call [`Self::migrate`] or
    /// [`Self::spawn_maintenance`] before use.
    pub fn new(
        url: &str,
        pool_size: usize,
        projections: Projections,
    ) -> Result<Arc<Self>, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("invalid database URL: {e}")))?;
        config
            .connect_timeout(Duration::from_secs(5))
            .application_name("berth");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(Duration::from_secs(5));
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let (notifier, _) = broadcast::channel(1024);
        Ok(Arc::new(Self {
            pool,
            config,
            projections,
            notifier,
            schema: SchemaState::default(),
        }))
    }

    /// Connects, applies migrations and starts listening for other processes' appends.
    pub async fn open(
        url: &str,
        pool_size: usize,
        projections: Projections,
    ) -> Result<Arc<Self>, StoreError> {
        let store = Self::new(url, pool_size, projections)?;
        store.migrate().await?;
        listener::spawn(store.config.clone(), store.notifier.clone());
        Ok(store)
    }

    /// Applies pending migrations; several processes may call this at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = schema::migrate(&self.config).await;
        self.schema.record(&result);
        result
    }

    /// For a long-running server: keeps retrying migrations in the background until the database
    /// answers (logging why it does not), and listens for other processes' appends.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(250);
            while let Err(e) = store.migrate().await {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database not ready");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            tracing::info!("database schema is up to date");
        });
        listener::spawn(self.config.clone(), self.notifier.clone());
    }

    /// The connection pool, for the read-model queries that live beside this store.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn apply_projections(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), StoreError> {
        for projection in self.projections.iter() {
            projection
                .apply_postgres(tx, event)
                .await
                .map_err(|source| {
                    StoreError::projection(projection.name(), event.position, source)
                })?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.schema.ensure()?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
            .await?;

        if let Some(command_id) = request.metadata.command_id
            && let Some((outcome, fingerprint)) = rows::replay_command(&*tx, command_id).await?
        {
            tx.commit().await?;
            check_fingerprint(
                command_id,
                fingerprint.as_deref(),
                request.fingerprint.as_deref(),
            )?;
            return Ok(outcome);
        }

        let stream = &request.stream;
        let actual: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(stream_version), 0) FROM events \
                 WHERE category = $1 AND stream_name = $2",
                &[&stream.category, &stream.name],
            )
            .await?
            .get(0);
        let actual = actual as u64;
        check_expected(stream, request.expected, actual)?;
        if request.events.is_empty() {
            return Ok(AppendOutcome {
                events: Vec::new(),
                stream_version: actual,
                replayed: false,
            });
        }

        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO events (category, stream_name, stream_version, event_id, event_type, \
                 schema_version, payload, actor, correlation_id, causation_id, command_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {EVENT_COLUMNS}"
            ))
            .await?;
        let meta = &request.metadata;
        let mut recorded = Vec::with_capacity(request.events.len());
        for (offset, event) in request.events.iter().enumerate() {
            let version = as_i64(actual + 1 + offset as u64);
            let schema_version = event.schema_version as i32;
            let row = tx
                .query_one(
                    &insert,
                    &[
                        &stream.category,
                        &stream.name,
                        &version,
                        &event.event_id,
                        &event.event_type,
                        &schema_version,
                        &event.payload,
                        &meta.actor,
                        &meta.correlation_id,
                        &meta.causation_id,
                        &meta.command_id,
                    ],
                )
                .await
                .map_err(|e| insert_error(e, event.event_id, stream, request.expected, actual))?;
            recorded.push(event_from_row(&row)?);
        }
        let first = as_i64(recorded[0].position);
        let last = as_i64(recorded[recorded.len() - 1].position);
        let stream_version = actual + recorded.len() as u64;
        if let Some(command_id) = meta.command_id {
            tx.execute(
                "INSERT INTO commands (command_id, category, stream_name, first_position, \
                 last_position, stream_version, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &command_id,
                    &stream.category,
                    &stream.name,
                    &first,
                    &last,
                    &as_i64(stream_version),
                    &request.fingerprint,
                ],
            )
            .await?;
        }
        for event in &recorded {
            self.apply_projections(&tx, event).await?;
        }
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.to_string()])
            .await?;
        tx.commit().await?;
        let _ = self.notifier.send(last as u64);
        Ok(AppendOutcome {
            events: recorded,
            stream_version,
            replayed: false,
        })
    }

    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<(AppendOutcome, Option<String>)>, StoreError> {
        self.schema.ensure()?;
        let client = self.pool.get().await?;
        rows::replay_command(&**client, command_id).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        until: Option<OffsetDateTime>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.schema.ensure()?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE category = $1 AND stream_name = $2 \
                     AND ($3::timestamptz IS NULL OR recorded_at <= $3) ORDER BY stream_version"
                ),
                &[&stream.category, &stream.name, &until],
            )
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.schema.ensure()?;
        let after = as_i64(after);
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
        if let Some(category) = &filter.category {
            push(&mut sql, &mut params, "category = ", category);
        }
        if let Some(name) = &filter.stream_name {
            push(&mut sql, &mut params, "stream_name = ", name);
        }
        if !filter.event_types.is_empty() {
            sql.push_str(&format!(" AND event_type = ANY(${})", params.len() + 1));
            params.push(&filter.event_types);
        }
        if let Some(actor) = &filter.actor {
            push(&mut sql, &mut params, "actor = ", actor);
        }
        if let Some(since) = &filter.since {
            push(&mut sql, &mut params, "recorded_at >= ", since);
        }
        if let Some(until) = &filter.until {
            push(&mut sql, &mut params, "recorded_at <= ", until);
        }
        sql.push_str(&format!(" ORDER BY position LIMIT ${}", params.len() + 1));
        params.push(&limit);
        let client = self.pool.get().await?;
        let rows = client.query(&sql, &params).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.schema.ensure()?;
        let client = self.pool.get().await?;
        let head: i64 = client
            .query_one("SELECT COALESCE(MAX(position), 0) FROM events", &[])
            .await?
            .get(0);
        Ok(head as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.schema.ensure()?;
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn rebuild_projections(&self, progress: Progress<'_>) -> Result<u64, StoreError> {
        self.schema.ensure()?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
            .await?;
        for projection in self.projections.iter() {
            for table in projection.tables() {
                tx.execute(&format!("DELETE FROM {table}"), &[]).await?;
            }
        }
        let total: i64 = tx
            .query_one("SELECT COUNT(*) FROM events", &[])
            .await?
            .get(0);
        let page = tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
            ))
            .await?;
        let (mut done, mut after) = (0u64, 0i64);
        loop {
            let rows = tx.query(&page, &[&after, &REBUILD_BATCH]).await?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            for row in &rows {
                let event = event_from_row(row)?;
                self.apply_projections(&tx, &event).await?;
            }
            done += rows.len() as u64;
            progress(done, total as u64);
        }
        tx.commit().await?;
        Ok(done)
    }

    fn subscribe(&self) -> broadcast::Receiver<Position> {
        self.notifier.subscribe()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

fn push<'a>(
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
    condition: &str,
    value: &'a (dyn ToSql + Sync),
) {
    params.push(value);
    sql.push_str(&format!(" AND {condition}${}", params.len()));
}
