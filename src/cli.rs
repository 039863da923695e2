//! The command line: `berth serve`, `berth rebuild-projections`, each with `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{DatabaseConfig, ServeConfig};
use crate::event_store::Backend;
use crate::projections;
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
    fn database(&self) -> DatabaseConfig {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::RebuildProjections(args) => rebuild_projections(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.store.data_dir.clone(),
        database: args.store.database(),
    };
    let app = Application::build(&config).await?;
    let address = app.address();
    tracing::info!(%address, database = %config.database.describe(), "berth started");
    println!("Berth listening on http://{address}");
    println!("  data:      {}", config.database.describe());
    println!("  health:    http://{address}/healthz   readiness: http://{address}/readyz");
    app.run_until(shutdown_signal()).await.context("serving")
}

async fn rebuild_projections(args: StoreArgs) -> anyhow::Result<()> {
    let database = args.database();
    let backend = Backend::open(&database, projections::all())
        .await
        .with_context(|| format!("opening {}", database.describe()))?;
    eprintln!(
        "rebuilding projections from the event log in {}",
        database.describe()
    );
    let started = Instant::now();
    let last_report = Mutex::new(Instant::now() - Duration::from_secs(1));
    let progress = |done: u64, total: u64| {
        let mut last = last_report.lock().expect("progress lock");
        if done == total || last.elapsed() >= Duration::from_millis(500) {
            *last = Instant::now();
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprintln!("  replayed {done}/{total} events ({percent}%)");
        }
    };
    let replayed = backend.store().rebuild_projections(&progress).await?;
    eprintln!(
        "rebuilt every projection from {replayed} events in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
