//! `berth fsck`: runs [`crate::fsck`] over a data directory and its database, prints the
//! report (text or JSON) on stdout and progress on stderr, and turns the outcome into the
//! exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::rebuild::Throttle;
use super::{StoreArgs, parse_ttl};
use crate::event_store::Backend;
use crate::fsck::{self, Options};
use crate::projections;
use crate::storage::FsBlobStore;

/// The long help of `berth fsck`.
pub const ABOUT: &str = "\
Check that blobs, read models and the event log agree, and report what is wrong.

Checks: the read models agree with the event log (folded afresh); every file under blobs/ \
hashes (sha256) to its name; every manifest the read models hold has its bytes; every tag \
points at such a manifest; every blob a stored manifest references (config, layers, chart \
archives) is stored and linked in its repository, and every child an index names is held; \
every repository link names a stored blob; under uploads/, intact sessions are noted as \
resumable, while sessions missing a file, sessions untouched for 24 hours, and temporary \
files of writes that never finished are leftovers.

The check only reads and is safe while servers run (files younger than --grace are taken for \
writes in flight). --repair fixes what can be fixed safely: corrupt or stray blob files are \
moved to quarantine/ in the data directory (pushing the content again restores it), \
leftovers under uploads/ and links to missing blobs are removed, missing links are made \
again, a manifest whose bytes are gone is deleted with its tags through the event log (actor \
`fsck`), and read models that disagree with the log are rebuilt. Stop the servers before \
--repair: a running server keeps serving what it cached, so --repair refuses to run while a server \
holds the data directory.

Exit codes: 0 clean (or everything found was repaired), 1 problems are left, 2 the check \
could not run.";

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One finding per line, then a summary.
    Text,
    /// One JSON document: `findings` and `summary`.
    Json,
}

/// Flags of `berth fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Where the data lives.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Fix what can be fixed safely (see above); stop the servers first.
    #[arg(long)]
    pub repair: bool,

    /// Temporary files and upload sessions younger than this are taken for writes in flight
    /// and left alone, e.g. 15m or 0s.
    #[arg(long, default_value = "15m", value_parser = parse_ttl)]
    pub grace: Duration,

    /// How the report is printed.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Runs the check; the exit code says whether problems are left.
pub async fn run(args: FsckArgs) -> ExitCode {
    match check(&args).await {
        Ok(report) => {
            match args.format {
                Format::Text => print!("{}", fsck::render_text(&report)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serializes")
                ),
            }
            if report.problems_left() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("berth fsck: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn check(args: &FsckArgs) -> anyhow::Result<fsck::Report> {
    use anyhow::Context;
    fsck::ensure_data_dir(&args.store.data_dir)?;
    let database = args.store.database();
    let backend = Backend::open(&database, projections::all())
        .await
        .with_context(|| format!("opening {}", database.describe()))?;
    let blobs = FsBlobStore::new(&args.store.data_dir).context("opening blob storage")?;
    let _lock = if args.repair {
        Some(blobs.lock_exclusive().context(
            "--repair needs the servers on this data directory stopped; the check alone may run beside them",
        )?)
    } else {
        None
    };
    eprintln!(
        "checking {} and {}",
        args.store.data_dir.display(),
        database.describe()
    );
    let throttle = Throttle::new();
    let progress = |what: &str, done: u64, total: u64| {
        if throttle.ready(done == total) {
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprintln!("  {what}: {done}/{total} ({percent}%)");
        }
    };
    let options = Options {
        repair: args.repair,
        grace: args.grace,
    };
    Ok(fsck::run(&backend, &blobs, &options, &progress).await?)
}
