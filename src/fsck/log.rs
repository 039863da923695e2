//! The read models against the event log: the log is folded with the aggregates' own
//! `evolve` into what every read model should hold (stream summaries, registries, upstream
//! proxies, repository manifests, tags and Helm charts) and compared table by table. On repair
//! every read model is rebuilt from the log, and the comparison runs again to confirm it.
//!
//! Projections are written in the append transaction, so a difference means a bug or a hand
//! edit, never a lag. A server appending during the check moves the log's head; the
//! comparison is then taken again, and reported only if the head held still.

use std::collections::BTreeMap;
use std::fmt::Debug;

use super::{FsckError, Kind, Run};
use crate::domain::registry::Registry;
use crate::domain::repository::{self, RepositoryEvent, RepositoryState};
use crate::domain::stored::from_stored;
use crate::domain::upstream_proxy::UpstreamProxy;
use crate::event_store::{Backend, EventFilter, MAX_PAGE, RecordedEvent, StoreError};
use crate::projections::inventory::{self, ResourceTable};
use crate::projections::repositories;
use crate::projections::resources::Document;
use crate::projections::streams;

/// How often a comparison is taken again when the log moved while it ran.
const ATTEMPTS: usize = 3;
/// How many differing rows a finding quotes.
const EXAMPLES: usize = 3;

/// What every read model should hold, folded from the log.
#[derive(Default)]
struct Expected {
    events: u64,
    streams: BTreeMap<String, (u64, u64, u64)>,
    repositories: BTreeMap<String, RepositoryState>,
    registries: BTreeMap<String, (Option<Registry>, u64)>,
    proxies: BTreeMap<String, (Option<UpstreamProxy>, u64)>,
}

/// Compares the read models with the log; rebuilds them on repair.
pub(super) async fn check(run: &mut Run<'_>) -> Result<(), FsckError> {
    let (events, differences) = settled(run).await?;
    run.report.summary.events = events;
    if differences.is_empty() {
        return Ok(());
    }
    for (table, rows) in &differences {
        let examples: Vec<&str> = rows.iter().take(EXAMPLES).map(String::as_str).collect();
        run.report.found(
            Kind::ReadModelMismatch,
            *table,
            format!(
                "{} rows disagree with the event log, e.g. {}",
                rows.len(),
                examples.join("; ")
            ),
        );
    }
    if !run.options.repair {
        return Ok(());
    }
    let progress = run.progress;
    let replayed = run
        .backend
        .store()
        .rebuild_projections(&|done, total| progress("rebuilding read models", done, total))
        .await?;
    let (_, after) = settled(run).await?;
    if after.is_empty() {
        let count = differences.len();
        let start = run.report.findings.len() - count;
        for finding in &mut run.report.findings[start..] {
            finding.repaired = Some(format!("rebuilt every read model from {replayed} events"));
        }
    }
    Ok(())
}

/// The differences, taken again while the log moves under the comparison.
async fn settled(run: &Run<'_>) -> Result<(u64, Vec<(&'static str, Vec<String>)>), FsckError> {
    let store = run.backend.store();
    let mut last = (0, Vec::new());
    for _ in 0..ATTEMPTS {
        let head = store.head().await?;
        let expected = fold(run, head).await?;
        let differences = compare(run.backend, &expected).await?;
        let moved = store.head().await? != head;
        last = (expected.events, differences);
        if last.1.is_empty() || !moved {
            break;
        }
    }
    Ok(last)
}

/// Folds the log up to `head`.
async fn fold(run: &Run<'_>, head: u64) -> Result<Expected, FsckError> {
    let store = run.backend.store();
    let mut expected = Expected::default();
    let mut after = 0;
    while after < head {
        let page = store
            .read_all(after, &EventFilter::default(), MAX_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in page.iter().filter(|e| e.position <= head) {
            apply(&mut expected, event)?;
        }
        (run.progress)("reading the event log", after.min(head), head);
    }
    Ok(expected)
}

fn apply(expected: &mut Expected, event: &RecordedEvent) -> Result<(), StoreError> {
    let corrupt = |e: crate::domain::stored::StoredEventError| {
        StoreError::Corrupt(format!("event {}: {e}", event.position))
    };
    expected.events += 1;
    let summary = expected
        .streams
        .entry(event.stream.to_string())
        .or_default();
    *summary = (event.stream_version, summary.1 + 1, event.position);
    let name = event.stream.name.clone();
    if let Some(holder) = repositories::holder_deleted(event) {
        // Its repositories end with it (see the projection).
        let prefix = format!("{holder}/");
        expected
            .repositories
            .retain(|name, _| !name.starts_with(&prefix));
    }
    match event.stream.category.as_str() {
        repository::CATEGORY => {
            let domain: RepositoryEvent =
                from_stored(&event.event_type, event.schema_version, &event.payload)
                    .map_err(corrupt)?;
            let adds = matches!(
                domain,
                RepositoryEvent::ManifestPushed { .. } | RepositoryEvent::TagMoved { .. }
            );
            let state = expected.repositories.remove(&name).unwrap_or_default();
            let state = repository::evolve(state, &domain);
            // What lands after its registry or proxy was deleted is not kept (see the
            // projection).
            let holder = name.split('/').next().unwrap_or_default();
            let held = live(&expected.registries, holder) || live(&expected.proxies, holder);
            if held || !adds {
                expected.repositories.insert(name, state);
            }
        }
        c if c == Registry::KIND.category() => {
            evolve(&mut expected.registries, event).map_err(corrupt)?
        }
        c if c == UpstreamProxy::KIND.category() => {
            evolve(&mut expected.proxies, event).map_err(corrupt)?
        }
        _ => {}
    }
    Ok(())
}

/// Whether the registry or proxy `name` exists at this point of the fold.
fn live<D>(resources: &BTreeMap<String, (Option<D>, u64)>, name: &str) -> bool {
    resources.get(name).is_some_and(|(doc, _)| doc.is_some())
}

fn evolve<D: Document>(
    resources: &mut BTreeMap<String, (Option<D>, u64)>,
    event: &RecordedEvent,
) -> Result<(), crate::domain::stored::StoredEventError> {
    let domain: D::Event = from_stored(&event.event_type, event.schema_version, &event.payload)?;
    let slot = resources.entry(event.stream.name.clone()).or_default();
    slot.0 = D::evolve(slot.0.take(), &domain);
    slot.1 = event.stream_version;
    Ok(())
}

/// Each table whose rows differ from what the log says, with its differing rows described.
async fn compare(
    backend: &Backend,
    expected: &Expected,
) -> Result<Vec<(&'static str, Vec<String>)>, FsckError> {
    let mut tables = Vec::new();
    let actual_streams = streams::list(backend)
        .await?
        .into_iter()
        .map(|s| {
            let id = s.stream.to_string();
            (id, (s.version, s.event_count, s.last_position))
        })
        .collect();
    tables.push(("stream_summaries", diff(&expected.streams, &actual_streams)));
    for (table, wanted) in [
        (ResourceTable::Registries, live_of(&expected.registries)),
        (ResourceTable::UpstreamProxies, live_of(&expected.proxies)),
    ] {
        let actual = inventory::resource_versions(backend, table).await?;
        tables.push((table.name(), diff(&wanted, &actual.into_iter().collect())));
    }
    let mut manifests = BTreeMap::new();
    let mut charts = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for (repository, state) in &expected.repositories {
        for (digest, record) in &state.manifests {
            manifests.insert(format!("{repository}@{digest}"), ());
            if record.chart.is_some() {
                charts.insert(format!("{repository}@{digest}"), ());
            }
        }
        for (tag, digest) in &state.tags {
            tags.insert(format!("{repository}:{tag}"), digest.to_string());
        }
    }
    let actual_manifests = inventory::manifests(backend)
        .await?
        .into_iter()
        .map(|m| (format!("{}@{}", m.repository, m.digest), ()))
        .collect();
    tables.push(("repository_manifests", diff(&manifests, &actual_manifests)));
    let actual_tags = inventory::tags(backend)
        .await?
        .into_iter()
        .map(|t| (format!("{}:{}", t.repository, t.tag), t.digest))
        .collect();
    tables.push(("repository_tags", diff(&tags, &actual_tags)));
    let actual_charts = inventory::charts(backend)
        .await?
        .into_iter()
        .map(|c| (c, ()))
        .collect();
    tables.push(("helm_charts", diff(&charts, &actual_charts)));
    tables.retain(|(_, rows)| !rows.is_empty());
    Ok(tables)
}

/// The live resources and their versions.
fn live_of<D>(map: &BTreeMap<String, (Option<D>, u64)>) -> BTreeMap<String, u64> {
    map.iter()
        .filter(|(_, (state, _))| state.is_some())
        .map(|(name, (_, version))| (name.clone(), *version))
        .collect()
}

/// Describes every key whose value differs between what the log says and the read model.
fn diff<V: PartialEq + Debug>(
    expected: &BTreeMap<String, V>,
    actual: &BTreeMap<String, V>,
) -> Vec<String> {
    let mut rows = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => rows.push(format!("{key} is missing")),
            Some(have) if have != want => {
                rows.push(format!("{key} is {have:?}, the log says {want:?}"))
            }
            Some(_) => {}
        }
    }
    for key in actual.keys().filter(|k| !expected.contains_key(*k)) {
        rows.push(format!("{key} is not in the log"));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_missing_extra_and_changed_rows() {
        let expected = BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]);
        let actual = BTreeMap::from([("b".to_owned(), 3), ("c".to_owned(), 4)]);
        assert_eq!(
            diff(&expected, &actual),
            [
                "a is missing",
                "b is 3, the log says 2",
                "c is not in the log"
            ]
        );
        assert!(diff(&expected, &expected).is_empty());
    }
}
