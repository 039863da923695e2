//! Following the log live: read everything after a position, then wait for the store's
//! wake-ups and read again. Subscribing before each read means a commit between the read and
//! the wait still wakes the follower, so nothing is missed.

use std::time::Duration;

use futures_util::Stream;

use crate::app::App;
use crate::event_store::{EventFilter, Position, RecordedEvent};

const BATCH: usize = 500;
/// Read again at least this often even without a wake-up (a lost notification only delays).
const POLL: Duration = Duration::from_secs(5);

/// The events after `start` that pass `filter`, forever, in order.
pub fn follow(
    app: App,
    start: Position,
    filter: EventFilter,
) -> impl Stream<Item = RecordedEvent> + Send + 'static {
    let state = (app, start, filter, Vec::<RecordedEvent>::new());
    futures_util::stream::unfold(state, |(app, mut last, filter, mut buffer)| async move {
        loop {
            if !buffer.is_empty() {
                let event = buffer.remove(0);
                return Some((event, (app, last, filter, buffer)));
            }
            let mut wakeups = app.backend().store().subscribe();
            match app.events(last, &filter, BATCH).await {
                Ok(events) if !events.is_empty() => {
                    last = events.last().map_or(last, |e| e.position);
                    buffer = events;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event stream read failed; retrying"),
            }
            // Positions the filter skips still move the cursor on, via the next read.
            let _ = tokio::time::timeout(POLL, wakeups.recv()).await;
        }
    })
}
