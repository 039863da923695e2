//! A Berth server started in-process on port 0 over a fresh database, with helpers to call its
//! REST API and mint tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth::auth::AuthConfig;
use berth::config::{DatabaseConfig, Secret, ServeConfig};
use berth::event_store::Backend;
use berth::startup::Application;
use serde_json::{Value, json};

use super::postgres::TestDatabase;

/// The HS256 secret test servers verify tokens with.
pub const JWT_SECRET: &str = "berth-test-secret-berth-test-secret";

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// The embedded SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh PostgreSQL database whose default collation is this ICU locale.
    PostgresIcu(&'static str),
}

/// How a test server differs from the defaults.
#[derive(Default)]
struct Options {
    /// Token keys besides [`JWT_SECRET`].
    auth: AuthConfig,
    /// Where Docker Hub proxies pull from.
    docker_hub_url: Option<String>,
    /// The mirror's proxy key.
    mirror: Option<berth::domain::ResourceName>,
    /// How long a connection may stay silent (30 s unless set).
    idle_timeout: Option<std::time::Duration>,
}

/// A running server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Its backend, to look behind the API.
    pub backend: Backend,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The data directory.
    pub data_dir: tempfile::TempDir,
    database: DatabaseConfig,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
    _database: Option<TestDatabase>,
}

impl TestApp {
    /// Starts a server on `db`.
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, AuthConfig::default()).await
    }

    /// Starts a server on `db` that also accepts what `auth` configures (its HS256 secret is
    /// always [`JWT_SECRET`]).
    pub async fn spawn_with(db: Db, auth: AuthConfig) -> Self {
        Self::spawn_with_options(
            db,
            Options {
                auth,
                ..Default::default()
            },
        )
        .await
    }

    /// Starts a server on `db` whose Docker Hub upstream proxies pull from `url`.
    pub async fn spawn_with_docker_hub(db: Db, url: &str) -> Self {
        let options = Options {
            docker_hub_url: Some(url.to_owned()),
            ..Default::default()
        };
        Self::spawn_with_options(db, options).await
    }

    /// Starts a server on `db` whose proxy `key` also answers as the registry mirror.
    pub async fn spawn_with_mirror(db: Db, key: &str) -> Self {
        let options = Options {
            mirror: Some(berth::domain::ResourceName::parse(key).unwrap()),
            ..Default::default()
        };
        Self::spawn_with_options(db, options).await
    }

    /// Starts a server on `db` that closes connections silent for `idle`.
    pub async fn spawn_with_idle_timeout(db: Db, idle: std::time::Duration) -> Self {
        let options = Options {
            idle_timeout: Some(idle),
            ..Default::default()
        };
        Self::spawn_with_options(db, options).await
    }

    async fn spawn_with_options(db: Db, options: Options) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (database, guard) = match db {
            Db::Sqlite => (
                DatabaseConfig::Sqlite {
                    path: data_dir.path().join("berth.db"),
                    pool_size: 8,
                },
                None,
            ),
            Db::Postgres | Db::PostgresIcu(_) => {
                let test_db = match db {
                    Db::PostgresIcu(locale) => TestDatabase::create_with_icu(locale).await,
                    _ => TestDatabase::create().await,
                };
                (
                    DatabaseConfig::Postgres {
                        url: Secret::new(test_db.url.clone()),
                        pool_size: 16,
                    },
                    Some(test_db),
                )
            }
        };
        Self::start(data_dir, database, options, guard).await
    }

    /// Stops this server and starts a new one on the same data directory and database, as a
    /// restart of the process would.
    pub async fn restart(mut self) -> Self {
        let data_dir =
            std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        let database = self.database.clone();
        let guard = self._database.take();
        let address = self.base_url.clone();
        drop(self.backend.clone());
        self._stop.take();
        // Wait until the old server has let go of its port.
        for _ in 0..200 {
            if reqwest::get(format!("{address}/healthz")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Self::start(data_dir, database, Options::default(), guard).await
    }

    /// A server on an existing database.
    pub async fn on_database(database: DatabaseConfig) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start(data_dir, database, Options::default(), None).await
    }

    /// A second server on the same database and storage as this one, as another instance
    /// behind the same load balancer would be.
    pub async fn sibling(&self) -> Self {
        let own = tempfile::tempdir().expect("temp dir");
        let shared = self.data_dir.path().to_path_buf();
        Self::start_at(own, shared, self.database.clone(), Options::default(), None).await
    }

    async fn start(
        data_dir: tempfile::TempDir,
        database: DatabaseConfig,
        options: Options,
        guard: Option<TestDatabase>,
    ) -> Self {
        let path = data_dir.path().to_path_buf();
        Self::start_at(data_dir, path, database, options, guard).await
    }

    async fn start_at(
        data_dir: tempfile::TempDir,
        data_path: std::path::PathBuf,
        database: DatabaseConfig,
        options: Options,
        guard: Option<TestDatabase>,
    ) -> Self {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_path,
            database: database.clone(),
            auth: AuthConfig {
                jwt_secret: Some(Secret::new(JWT_SECRET.to_owned())),
                ..options.auth
            },
            secret_key: None,
            base_url: None,
            manifest_cache_bytes: 16 * 1024 * 1024,
            idle_timeout: options
                .idle_timeout
                .unwrap_or(std::time::Duration::from_secs(30)),
            docker_hub_url: options
                .docker_hub_url
                .unwrap_or_else(|| berth::config::DOCKER_HUB_URL.to_owned()),
            mirror: options.mirror,
        };
        // The server runs on a runtime of its own, as in production; the test looks at the
        // database through a store of its own.
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server_config = config.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("server runtime");
            runtime.block_on(async move {
                let app = Application::build(&server_config).await.expect("build app");
                let _ = address_tx.send(app.address());
                let _ = app
                    .run_until(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let address = address_rx.await.expect("the server started");
        let backend = Backend::open(&config.database, berth::projections::all())
            .await
            .expect("open the test's own store");
        let this = Self {
            base_url: format!("http://{address}"),
            backend,
            client: reqwest::Client::new(),
            data_dir,
            database,
            _stop: Some(stop),
            _database: guard,
        };
        this.wait_ready().await;
        this
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server never became ready");
    }

    /// Runs `berth fsck` (the read-only check, beside this running server) with these extra
    /// arguments; its exit code and JSON report.
    pub fn fsck(&self, args: &[&str]) -> (i32, Value) {
        let url = match &self.database {
            DatabaseConfig::Postgres { url, .. } => Some(url.expose().clone()),
            DatabaseConfig::Sqlite { .. } => None,
        };
        let data_dir = self.data_dir.path().to_str().expect("a UTF-8 temp dir");
        super::server::fsck(data_dir, url.as_deref(), args)
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A valid token for `sub` with `scope`.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        sign(json!({ "sub": sub, "scope": scope, "exp": now() + 3600, "iat": now() }))
    }

    /// An admin token.
    pub fn admin(&self) -> String {
        self.token("alice", "admin")
    }

    /// Sends `method path` with an admin token and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        self.call_as(&self.admin(), method, path, body, &[]).await
    }

    /// Sends a request with this token and extra headers.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Response::from(request.send().await.expect("request")).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (null when empty or not JSON).
    pub body: Value,
    /// The raw body.
    pub text: String,
}

impl Response {
    /// Reads a response whole.
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with the test servers' HS256 secret.
pub fn sign(claims: Value) -> String {
    sign_with(claims, JWT_SECRET.as_bytes())
}

/// Signs claims with another HS256 secret.
pub fn sign_with(claims: Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Reads Server-Sent Events from a streaming response.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `id:`.
    pub id: String,
    /// `event:`.
    pub event: String,
    /// `data:`, parsed.
    pub data: Value,
}

impl SseReader {
    /// Wraps a response.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with data, or `None` when none arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: String::new(),
                    event: String::new(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().to_owned();
                    }
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    }
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !data.is_empty() {
                    event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }
}
