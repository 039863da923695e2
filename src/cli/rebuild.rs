//! `berth rebuild-projections`: replays the whole log into fresh read models, with progress
//! on stderr; and the throttle that keeps progress lines readable for every long command.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::StoreArgs;
use crate::event_store::Backend;
use crate::projections;

/// Replays the log into fresh read models, reporting progress on stderr.
pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let database = args.database();
    let backend = Backend::open(&database, projections::all())
        .await
        .with_context(|| format!("opening {}", database.describe()))?;
    eprintln!(
        "rebuilding projections from the event log in {}",
        database.describe()
    );
    let started = Instant::now();
    let throttle = Throttle::new();
    let progress = |done: u64, total: u64| {
        if throttle.ready(done == total) {
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

/// Lets progress lines through at most twice a second (and always the last one), so long
/// work reports on stderr without flooding it.
pub(super) struct Throttle(Mutex<Instant>);

impl Throttle {
    pub(super) fn new() -> Self {
        Self(Mutex::new(Instant::now() - Duration::from_secs(1)))
    }

    /// Whether a line may be printed now; `last` lines always may.
    pub(super) fn ready(&self, last: bool) -> bool {
        let mut at = self.0.lock().expect("progress lock");
        if last || at.elapsed() >= Duration::from_millis(500) {
            *at = Instant::now();
            return true;
        }
        false
    }
}
