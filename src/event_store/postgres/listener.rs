//! LISTEN/NOTIFY: wakes this process's subscribers when any process commits events.
//!
//! A notification only says "something new up to position P"; subscribers then read by position,
//! so a lost notification delays a reader but never makes it miss an event. After a reconnect the
//! listener announces the current head, because notifications sent meanwhile are gone.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use super::CHANNEL;
use crate::event_store::Position;

/// Starts the listener task; it runs for the life of the process and reconnects on failure.
pub fn spawn(config: tokio_postgres::Config, notifier: broadcast::Sender<Position>) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(250);
        loop {
            match listen(&config, &notifier).await {
                Ok(()) => delay = Duration::from_millis(250),
                Err(e) => tracing::debug!(error = %e, "event listener disconnected"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    });
}

async fn listen(
    config: &tokio_postgres::Config,
    notifier: &broadcast::Sender<Position>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Ok(position) = n.payload().parse::<Position>() {
                        let _ = tx.send(position);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if let Ok(row) = client
        .query_one("SELECT COALESCE(MAX(position), 0) FROM events", &[])
        .await
    {
        let _ = notifier.send(row.get::<_, i64>(0) as Position);
    }
    while let Some(position) = rx.recv().await {
        let _ = notifier.send(position);
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
