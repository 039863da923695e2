//! One contract suite for the event store, run against both backends, plus the races that only
//! a real database can show.

mod support;

use std::sync::Arc;
use std::time::Duration;

use berth::event_store::{
    AppendRequest, Backend, EventFilter, ExpectedVersion, Metadata, NewEvent, Projection,
    SharedEventStore, StoreError, StreamId,
};
use berth::projections::{self, streams};
use serde_json::json;
use support::{RawDatabase, StoreFixture};
use uuid::Uuid;

fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(event_type, 1, json!({ "n": n }))
}

fn append(stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        expected,
        events,
        metadata: Metadata {
            actor: Some("alice".into()),
            correlation_id: Some("req-1".into()),
            causation_id: None,
            command_id: None,
        },
        fingerprint: None,
    }
}

fn widget(name: &str) -> StreamId {
    StreamId::new("widget", name)
}

/// Defines each contract test once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::StoreFixture::sqlite(berth::projections::all()).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::StoreFixture::postgres(berth::projections::all()).await).await
                }
            )*
        }
    };
}

contract!(
    a_new_stream_starts_at_version_one,
    no_stream_is_refused_once_the_stream_exists,
    an_exact_version_must_match_the_stream,
    any_version_appends_whatever_the_version,
    a_multi_event_append_is_contiguous_and_all_or_nothing,
    a_duplicate_event_id_is_refused,
    a_retried_command_returns_its_first_outcome_and_appends_nothing,
    a_command_id_reused_for_another_request_is_refused,
    reads_after_a_position_honour_every_filter,
    a_stream_can_be_read_as_of_a_time,
    the_database_refuses_to_change_or_remove_events,
    subscribers_wake_up_after_a_commit,
    a_rebuilt_projection_equals_the_incremental_one,
    concurrent_appends_with_one_expected_version_have_exactly_one_winner,
);

async fn a_new_stream_starts_at_version_one(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    let outcome = store
        .append(append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("WidgetMade", 1)],
        ))
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 1);
    assert!(!outcome.replayed);
    let recorded = &outcome.events[0];
    assert_eq!(recorded.stream_version, 1);
    assert_eq!(recorded.stream, stream);
    assert_eq!(recorded.metadata.actor.as_deref(), Some("alice"));
    assert_eq!(recorded.payload, json!({ "n": 1 }));
    assert_eq!(
        store.read_stream(&stream, None).await.unwrap(),
        outcome.events
    );
    assert_eq!(store.head().await.unwrap(), recorded.position);
}

async fn no_stream_is_refused_once_the_stream_exists(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    store
        .append(append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("A", 1)],
        ))
        .await
        .unwrap();
    let err = store
        .append(append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("A", 2)],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { actual: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.read_stream(&stream, None).await.unwrap().len(), 1);
}

async fn an_exact_version_must_match_the_stream(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    store
        .append(append(
            &stream,
            ExpectedVersion::Exact(0),
            vec![event("A", 1)],
        ))
        .await
        .unwrap();
    let second = store
        .append(append(
            &stream,
            ExpectedVersion::Exact(1),
            vec![event("A", 2)],
        ))
        .await
        .unwrap();
    assert_eq!(second.stream_version, 2);
    for stale in [0, 1, 3] {
        let err = store
            .append(append(
                &stream,
                ExpectedVersion::Exact(stale),
                vec![event("A", 9)],
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::VersionConflict { actual: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("is at version 2"), "{err}");
    }
    assert_eq!(store.read_stream(&stream, None).await.unwrap().len(), 2);
}

async fn any_version_appends_whatever_the_version(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    for n in 1..=3 {
        let outcome = store
            .append(append(&stream, ExpectedVersion::Any, vec![event("A", n)]))
            .await
            .unwrap();
        assert_eq!(outcome.stream_version, n);
    }
}

async fn a_multi_event_append_is_contiguous_and_all_or_nothing(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    let outcome = store
        .append(append(
            &stream,
            ExpectedVersion::NoStream,
            (1..=3).map(|n| event("A", n)).collect(),
        ))
        .await
        .unwrap();
    let versions: Vec<u64> = outcome.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 2, 3]);
    let positions: Vec<u64> = outcome.events.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "{positions:?}"
    );

    // The second event reuses a known id: nothing of this append may stay.
    let known = outcome.events[0].event_id;
    let mut clash = event("B", 5);
    clash.event_id = known;
    let err = store
        .append(append(
            &stream,
            ExpectedVersion::Exact(3),
            vec![event("B", 4), clash],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == known),
        "{err:?}"
    );
    assert_eq!(store.read_stream(&stream, None).await.unwrap().len(), 3);
}

async fn a_duplicate_event_id_is_refused(fx: StoreFixture) {
    let store = fx.backend.store();
    let first = event("A", 1);
    let id = first.event_id;
    store
        .append(append(
            &widget("alpha"),
            ExpectedVersion::Any,
            vec![first.clone()],
        ))
        .await
        .unwrap();
    let err = store
        .append(append(&widget("beta"), ExpectedVersion::Any, vec![first]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(dup) if dup == id),
        "{err:?}"
    );
    assert!(
        store
            .read_stream(&widget("beta"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_retried_command_returns_its_first_outcome_and_appends_nothing(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    let command_id = Uuid::now_v7();
    let mut request = append(
        &stream,
        ExpectedVersion::NoStream,
        vec![event("A", 1), event("A", 2)],
    );
    request.metadata.command_id = Some(command_id);
    let first = store.append(request.clone()).await.unwrap();
    assert!(!first.replayed);

    // The retry carries fresh event ids and a now-stale expectation; it must still replay.
    let mut retry = request.clone();
    retry.events = vec![event("A", 1), event("A", 2)];
    let second = store.append(retry).await.unwrap();
    assert!(second.replayed);
    assert_eq!(second.events, first.events);
    assert_eq!(second.stream_version, 2);
    assert_eq!(store.read_stream(&stream, None).await.unwrap().len(), 2);
    assert_eq!(store.head().await.unwrap(), first.events[1].position);
}

async fn a_command_id_reused_for_another_request_is_refused(fx: StoreFixture) {
    let store = fx.backend.store();
    let command_id = Uuid::now_v7();
    let mut request = append(&widget("alpha"), ExpectedVersion::Any, vec![event("A", 1)]);
    request.metadata.command_id = Some(command_id);
    request.fingerprint = Some("digest-1".into());
    let first = store.append(request.clone()).await.unwrap();
    let (found, fingerprint) = store
        .find_command(command_id)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(found.events, first.events);
    assert_eq!(fingerprint.as_deref(), Some("digest-1"));
    assert!(store.find_command(Uuid::now_v7()).await.unwrap().is_none());

    let mut other = request.clone();
    other.events = vec![event("A", 2)];
    other.fingerprint = Some("digest-2".into());
    let err = store.append(other).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CommandReused(id) if id == command_id),
        "{err:?}"
    );
    request.events = vec![event("A", 1)];
    assert!(store.append(request).await.unwrap().replayed);
    assert_eq!(
        store
            .read_stream(&widget("alpha"), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn reads_after_a_position_honour_every_filter(fx: StoreFixture) {
    let store = fx.backend.store();
    let mut positions = Vec::new();
    for (i, (category, name, kind, actor)) in [
        ("widget", "alpha", "WidgetMade", "alice"),
        ("widget", "beta", "WidgetMade", "bob"),
        ("gadget", "hub", "GadgetMade", "alice"),
        ("widget", "alpha", "WidgetChanged", "bob"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut request = append(
            &StreamId::new(category, name),
            ExpectedVersion::Any,
            vec![event(kind, i as u64)],
        );
        request.metadata.actor = Some(actor.into());
        positions.push(store.append(request).await.unwrap().events[0].position);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let read = |after: u64, filter: EventFilter, limit: usize| {
        let store = store.clone();
        async move {
            store
                .read_all(after, &filter, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.position)
                .collect::<Vec<_>>()
        }
    };
    let all = EventFilter::default();
    assert_eq!(read(0, all.clone(), 100).await, positions);
    assert_eq!(read(positions[1], all.clone(), 100).await, positions[2..]);
    assert_eq!(read(0, all.clone(), 2).await, positions[..2]);
    let category = EventFilter {
        category: Some("widget".into()),
        ..Default::default()
    };
    assert_eq!(
        read(0, category, 100).await,
        [positions[0], positions[1], positions[3]]
    );
    let stream = EventFilter {
        category: Some("widget".into()),
        stream_name: Some("alpha".into()),
        ..Default::default()
    };
    assert_eq!(read(0, stream, 100).await, [positions[0], positions[3]]);
    let types = EventFilter {
        event_types: vec!["WidgetChanged".into(), "GadgetMade".into()],
        ..Default::default()
    };
    assert_eq!(read(0, types, 100).await, [positions[2], positions[3]]);
    let actor = EventFilter {
        actor: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(read(0, actor, 100).await, [positions[1], positions[3]]);

    let events = store
        .read_all(0, &EventFilter::default(), 100)
        .await
        .unwrap();
    let window = EventFilter {
        since: Some(events[1].recorded_at),
        until: Some(events[2].recorded_at),
        ..Default::default()
    };
    assert_eq!(read(0, window, 100).await, [positions[1], positions[2]]);
}

async fn a_stream_can_be_read_as_of_a_time(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("alpha");
    let mut times = Vec::new();
    for n in 1..=3 {
        let outcome = store
            .append(append(&stream, ExpectedVersion::Any, vec![event("A", n)]))
            .await
            .unwrap();
        times.push(outcome.events[0].recorded_at);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = times[0] - time::Duration::milliseconds(1);
    assert!(
        store
            .read_stream(&stream, Some(before))
            .await
            .unwrap()
            .is_empty()
    );
    let as_of_second = store.read_stream(&stream, Some(times[1])).await.unwrap();
    assert_eq!(
        as_of_second
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(store.read_stream(&stream, None).await.unwrap().len(), 3);
}

async fn the_database_refuses_to_change_or_remove_events(fx: StoreFixture) {
    let store = fx.backend.store();
    let mut request = append(&widget("alpha"), ExpectedVersion::Any, vec![event("A", 1)]);
    request.metadata.command_id = Some(Uuid::now_v7());
    store.append(request).await.unwrap();
    let mut statements = vec![
        "UPDATE events SET event_type = 'Tampered'",
        "DELETE FROM events",
        "UPDATE commands SET stream_name = 'x'",
        "DELETE FROM commands",
    ];
    let refusals: Vec<String> = match &fx.raw {
        RawDatabase::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            statements.push("TRUNCATE events");
            let mut refusals = Vec::new();
            for sql in &statements {
                let err = client.batch_execute(sql).await.expect_err(sql);
                refusals.push(err.as_db_error().expect(sql).message().to_owned());
            }
            refusals
        }
        RawDatabase::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            statements
                .iter()
                .map(|sql| conn.execute_batch(sql).expect_err(sql).to_string())
                .collect()
        }
    };
    for (sql, refusal) in statements.iter().zip(&refusals) {
        assert!(refusal.contains("immutable"), "{sql}: {refusal}");
    }
    let events = store.read_stream(&widget("alpha"), None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "A");
}

async fn subscribers_wake_up_after_a_commit(fx: StoreFixture) {
    let store = fx.backend.store();
    let mut wakeups = store.subscribe();
    let outcome = store
        .append(append(
            &widget("alpha"),
            ExpectedVersion::Any,
            vec![event("A", 1)],
        ))
        .await
        .unwrap();
    let position = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let seen = wakeups.recv().await.unwrap();
            if seen >= outcome.events[0].position {
                return seen;
            }
        }
    })
    .await
    .expect("no wake-up after a commit");
    assert_eq!(position, outcome.events[0].position);
}

async fn a_rebuilt_projection_equals_the_incremental_one(fx: StoreFixture) {
    let store = fx.backend.store();
    for n in 0..40u64 {
        let name = format!("r{}", n % 7);
        store
            .append(append(
                &widget(&name),
                ExpectedVersion::Any,
                vec![event("A", n)],
            ))
            .await
            .unwrap();
    }
    let incremental = streams::list(&fx.backend).await.unwrap();
    assert_eq!(incremental.len(), 7);
    assert_eq!(incremental.iter().map(|s| s.event_count).sum::<u64>(), 40);
    let reports = std::sync::Mutex::new(Vec::new());
    let replayed = store
        .rebuild_projections(&|done, total| reports.lock().unwrap().push((done, total)))
        .await
        .unwrap();
    assert_eq!(replayed, 40);
    assert_eq!(reports.lock().unwrap().last(), Some(&(40, 40)));
    assert_eq!(streams::list(&fx.backend).await.unwrap(), incremental);
}

async fn concurrent_appends_with_one_expected_version_have_exactly_one_winner(fx: StoreFixture) {
    let store = fx.backend.store();
    let stream = widget("contested");
    for round in 0..100u64 {
        let attempts = (0..32).map(|_| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                store
                    .append(append(
                        &stream,
                        ExpectedVersion::Exact(round),
                        vec![event("A", round)],
                    ))
                    .await
            })
        });
        let results = futures_util::future::join_all(attempts).await;
        let mut winners = 0;
        for result in results {
            match result.unwrap() {
                Ok(outcome) => {
                    winners += 1;
                    assert_eq!(outcome.stream_version, round + 1);
                }
                Err(StoreError::VersionConflict { .. }) => {}
                Err(other) => panic!("round {round}: unexpected error {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
    let versions: Vec<u64> = store
        .read_stream(&stream, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=100).collect::<Vec<_>>());
}

/// A projection that stalls a random while before the append commits, and fails some appends so
/// that they roll back after their positions were drawn.
struct Chaos;

#[async_trait::async_trait]
impl Projection for Chaos {
    fn name(&self) -> &'static str {
        "chaos"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply_postgres(
        &self,
        _tx: &tokio_postgres::Transaction<'_>,
        event: &berth::event_store::RecordedEvent,
    ) -> Result<(), berth::event_store::ProjectionError> {
        let (delay_ms, fail) = {
            use rand::Rng;
            let mut rng = rand::rng();
            (rng.random_range(0..4u64), rng.random_bool(0.15))
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if fail {
            return Err(berth::event_store::ProjectionError::Payload {
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                reason: "chaos".into(),
            });
        }
        Ok(())
    }

    fn apply_sqlite(
        &self,
        _tx: &rusqlite::Transaction<'_>,
        _event: &berth::event_store::RecordedEvent,
    ) -> Result<(), berth::event_store::ProjectionError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catch_up_readers_never_skip_an_event() {
    let fx = StoreFixture::postgres(Arc::new([Arc::new(Chaos) as Arc<dyn Projection>])).await;
    let store: SharedEventStore = fx.backend.store();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut committed = 0u32;
                for n in 0..40u64 {
                    let stream = StreamId::new("widget", format!("w{w}"));
                    if store
                        .append(append(&stream, ExpectedVersion::Any, vec![event("A", n)]))
                        .await
                        .is_ok()
                    {
                        committed += 1;
                    }
                }
                committed
            })
        })
        .collect();
    let writers_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let writers_done = Arc::clone(&writers_done);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            let mut idle_after_done = 0;
            loop {
                let page = store
                    .read_all(last, &EventFilter::default(), 50)
                    .await
                    .unwrap();
                for event in &page {
                    assert!(
                        event.position > last,
                        "out of order: {} after {last}",
                        event.position
                    );
                    last = event.position;
                    seen.push(event.position);
                }
                if page.is_empty() {
                    if writers_done.load(std::sync::atomic::Ordering::Acquire) {
                        idle_after_done += 1;
                        if idle_after_done > 2 {
                            return seen;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut committed = 0;
    for writer in writers {
        committed += writer.await.unwrap();
    }
    writers_done.store(true, std::sync::atomic::Ordering::Release);
    let seen = reader.await.unwrap();
    let all: Vec<u64> = store
        .read_all(0, &EventFilter::default(), 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert!(
        committed > 100 && committed < 240,
        "chaos should roll some back: {committed}"
    );
    assert_eq!(all.len(), committed as usize);
    assert_eq!(seen, all, "the catch-up reader saw a different sequence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_from_several_processes_at_once_do_not_race() {
    let db = support::postgres::TestDatabase::create().await;
    let opens = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            berth::event_store::postgres::PgEventStore::open(&url, 2, projections::all()).await
        })
    });
    for result in futures_util::future::join_all(opens).await {
        result
            .unwrap()
            .expect("every concurrent start migrates or finds the schema in place");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_appends_in_one_process_wake_another() {
    let fx = StoreFixture::postgres(projections::all()).await;
    let RawDatabase::Postgres(url) = &fx.raw else {
        unreachable!()
    };
    let other = Backend::Postgres(
        berth::event_store::postgres::PgEventStore::open(url, 2, projections::all())
            .await
            .unwrap(),
    );
    let mut wakeups = other.store().subscribe();
    // Let the listener connect and announce the current head, then forget that announcement:
    // from here on only a notification can carry the new position.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while wakeups.try_recv().is_ok() {}
    let outcome = fx
        .backend
        .store()
        .append(append(
            &widget("alpha"),
            ExpectedVersion::Any,
            vec![event("A", 1)],
        ))
        .await
        .unwrap();
    let target = outcome.events[0].position;
    tokio::time::timeout(Duration::from_secs(10), async {
        while wakeups.recv().await.unwrap() < target {}
    })
    .await
    .expect("the other store was not notified");
}
