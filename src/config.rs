//! Typed configuration, built from command-line flags and their `BERTH_*` / `DATABASE_URL`
//! environment equivalents. Secrets are wrapped so that they never reach a log line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A value that must never be printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the event log and read models live.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// PostgreSQL at this URL.
    Postgres {
        /// The connection URL (it may hold a password).
        url: Secret<String>,
        /// Connections in the pool.
        pool_size: usize,
    },
    /// An embedded SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Connections in the pool.
        pool_size: usize,
    },
}

impl DatabaseConfig {
    /// PostgreSQL when a URL is given, else the SQLite file `berth.db` in the data directory.
    pub fn from_parts(
        database_url: Option<&str>,
        data_dir: &std::path::Path,
        pool_size: usize,
    ) -> Self {
        match database_url.map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => Self::Postgres {
                url: Secret::new(url.to_owned()),
                pool_size,
            },
            None => Self::Sqlite {
                path: data_dir.join("berth.db"),
                pool_size,
            },
        }
    }

    /// A short description for logs, without secrets.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres { .. } => "PostgreSQL (DATABASE_URL)".to_owned(),
            Self::Sqlite { path, .. } => format!("SQLite at {}", path.display()),
        }
    }
}

/// Everything `berth serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where blobs, the SQLite file and generated keys live.
    pub data_dir: PathBuf,
    /// The event store.
    pub database: DatabaseConfig,
    /// Token verification keys.
    pub auth: crate::auth::AuthConfig,
    /// `BERTH_SECRET_KEY`: the key upstream passwords are sealed with (else a key file).
    pub secret_key: Option<Secret<String>>,
    /// `BERTH_BASE_URL`: how clients reach this server (else taken from each request's Host).
    pub base_url: Option<String>,
    /// Bytes of manifests kept in memory.
    pub manifest_cache_bytes: u64,
    /// `BERTH_IDLE_TIMEOUT`: how long a connection may stay silent before it is closed.
    pub idle_timeout: std::time::Duration,
    /// `BERTH_DOCKERHUB_URL`: where Docker Hub proxies pull from.
    pub docker_hub_url: String,
    /// `BERTH_MIRROR`: the Docker upstream proxy that also answers un-prefixed repositories.
    pub mirror: Option<crate::domain::ResourceName>,
}

/// Docker Hub's registry endpoint.
pub const DOCKER_HUB_URL: &str = "https://registry-1.docker.io";
