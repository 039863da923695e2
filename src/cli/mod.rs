//! The command line: `berth serve`, `berth rebuild-projections`, `berth fsck`, each with
//! `--help`.

mod fsck;
mod rebuild;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::auth::{AuthConfig, Authenticator, Scopes};
use crate::config::{DOCKER_HUB_URL, DatabaseConfig, Secret, ServeConfig};
use crate::domain::ResourceName;
use crate::startup::{Application, shutdown_signal};
use crate::telemetry::{self, LogFormat};

/// Berth: an artifact registry for Docker (OCI) and Helm with upstream pull-through proxies.
#[derive(Debug, Parser)]
#[command(name = "berth", version, propagate_version = true)]
pub struct Cli {
    /// How log lines are written (level from BERTH_LOG, e.g. `info` or `berth=debug`).
    #[arg(
        long,
        global = true,
        env = "BERTH_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry service until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Replay the whole event log into fresh read models (in one transaction).
    RebuildProjections(StoreArgs),
    /// Check that blobs, read models and the event log agree; with --repair, fix what can be
    /// fixed safely.
    #[command(long_about = fsck::ABOUT)]
    Fsck(fsck::FsckArgs),
    /// Print a bearer token signed with this server's key.
    Token(TokenArgs),
    /// Print the OpenAPI document of the REST API (YAML).
    Openapi,
}

/// The keys that sign and verify tokens; shared by `serve` and `token`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// HS256 secret for bearer tokens; when unset, `jwt.secret` in the data directory is used
    /// (generated on first start).
    #[arg(long, env = "BERTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file of an RS256 or ES256 public key whose tokens are accepted too (repeatable;
    /// comma-separated in the environment).
    #[arg(long, env = "BERTH_JWT_PUBLIC_KEYS", value_delimiter = ',')]
    pub jwt_public_key: Vec<PathBuf>,

    /// Required `iss` claim, if set.
    #[arg(long, env = "BERTH_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, if set.
    #[arg(long, env = "BERTH_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

impl KeyArgs {
    fn auth(&self) -> AuthConfig {
        AuthConfig {
            jwt_secret: self.jwt_secret.clone().map(Secret::new),
            public_keys: self.jwt_public_key.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        }
    }
}

/// Flags of `berth token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The subject (who the token speaks for; recorded as the actor of every change).
    #[arg(long)]
    pub sub: String,

    /// Space-separated scopes: registry:read, registry:write, audit:read, admin.
    #[arg(long, default_value = "admin")]
    pub scope: String,

    /// How long the token is valid, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Directory holding the server's generated keys.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Signing keys.
    #[command(flatten)]
    pub keys: KeyArgs,
}

pub(crate) fn parse_ttl(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 30m, 1h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    Ok(Duration::from_secs(number * seconds))
}

/// Where the data lives; shared by every command that opens the store.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Directory for blobs, the embedded database and generated keys.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (postgres://user:pass@host:port/db); when unset, Berth uses the embedded
    /// SQLite file `berth.db` in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Database connections to keep in the pool.
    #[arg(long, env = "BERTH_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,
}

impl StoreArgs {
    pub(crate) fn database(&self) -> DatabaseConfig {
        DatabaseConfig::from_parts(
            self.database_url.as_deref(),
            &self.data_dir,
            self.db_pool_size,
        )
    }
}

/// Flags of `berth serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Token keys.
    #[command(flatten)]
    pub keys: KeyArgs,

    /// Key (32 bytes, base64) that upstream passwords are sealed with; when unset,
    /// `secret.key` in the data directory is used (generated on first start). Instances that
    /// share a database must share it.
    #[arg(long, env = "BERTH_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// The URL clients reach Berth at (e.g. https://registry.example.com); it goes into the
    /// token realm that docker clients are sent to. Unset: taken from each request's Host.
    #[arg(long, env = "BERTH_BASE_URL")]
    pub base_url: Option<String>,

    /// Bytes of manifests to keep in memory for fast pulls.
    #[arg(long, env = "BERTH_MANIFEST_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub manifest_cache_bytes: u64,

    /// How long a connection may stay silent, e.g. 30s: a client that sends (or reads) nothing
    /// for this long is cut off, however slowly it trickles a request in.
    #[arg(long, env = "BERTH_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_ttl)]
    pub idle_timeout: Duration,

    /// Where upstream proxies with the Docker Hub source pull from.
    #[arg(long, env = "BERTH_DOCKERHUB_URL", default_value = DOCKER_HUB_URL)]
    pub dockerhub_url: String,

    /// The key of a Docker upstream proxy that also answers repositories outside every
    /// registry and proxy (e.g. /v2/library/nginx/...), so that Berth can be a registry mirror
    /// for Docker daemons and containerd.
    #[arg(long, env = "BERTH_MIRROR", value_parser = parse_name)]
    pub mirror: Option<ResourceName>,
}

fn parse_name(value: &str) -> Result<ResourceName, String> {
    ResourceName::parse(value).map_err(|e| e.to_string())
}

/// Runs the parsed command line and turns its outcome into the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Fsck(args) => return Ok(fsck::run(args).await),
        Command::Serve(args) => serve(args).await,
        Command::RebuildProjections(args) => rebuild::run(args).await,
        Command::Token(args) => token(args),
        Command::Openapi => {
            print!("{}", crate::api::spec_yaml());
            Ok(())
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.store.data_dir.clone(),
        database: args.store.database(),
        auth: args.keys.auth(),
        secret_key: args.secret_key.map(Secret::new),
        base_url: args.base_url,
        manifest_cache_bytes: args.manifest_cache_bytes,
        idle_timeout: args.idle_timeout,
        docker_hub_url: args.dockerhub_url,
        mirror: args.mirror,
    };
    let app = Application::build(&config).await?;
    let shutdown = shutdown_signal().context("installing the signal handlers")?;
    let address = app.address();
    tracing::info!(%address, database = %config.database.describe(), "berth started");
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "berth".to_owned());
    println!("Berth listening on http://{address}");
    println!("  console:   http://{address}/   (sign in with a token from the next line)");
    println!(
        "  token:     {program} token --data-dir {} --sub $USER --scope admin",
        config.data_dir.display()
    );
    println!("  API:       http://{address}/api/v1   docs: http://{address}/api/docs");
    println!("  health:    http://{address}/healthz   readiness: http://{address}/readyz");
    println!("  data:      {}", config.database.describe());
    app.run_until(shutdown).await.context("serving")
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let authenticator = Authenticator::load(&args.keys.auth(), &args.data_dir)?;
    let scopes = Scopes::parse(&args.scope);
    if scopes.to_string().is_empty() {
        anyhow::bail!(
            "--scope {:?} names no known scope; use registry:read, registry:write, audit:read or admin",
            args.scope
        );
    }
    println!("{}", authenticator.mint(&args.sub, &scopes, args.ttl));
    Ok(())
}
