//! The flight's readers: memory for those that keep up, the file for those behind, and the
//! last byte held back until the digest checked out.

use futures_util::StreamExt;

use super::*;

fn streaming(temp: &std::path::Path) -> (Arc<Flight>, PathBuf) {
    let (flight, leader) = Flights::default().join(&Digest::from_sha256(&[0; 32]));
    assert!(leader);
    flight.update(|p| {
        p.phase = Phase::Streaming {
            temp: temp.to_path_buf(),
            size: None,
        }
    });
    (flight, temp.with_extension("stored"))
}

#[tokio::test]
async fn readers_get_all_but_the_last_byte_until_the_blob_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("temp");
    let (flight, stored) = streaming(&temp);
    flight.received(Bytes::from_static(b"hello"));
    let mut stream = Box::pin(read(flight.clone(), temp, stored));
    assert_eq!(stream.next().await.unwrap().unwrap().as_ref(), b"hell");
    let last = tokio::spawn(async move {
        let rest: Vec<_> = stream.collect().await;
        rest.into_iter().map(Result::unwrap).collect::<Vec<_>>()
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!last.is_finished(), "the last byte waits for the digest");
    flight.update(|p| {
        p.verified = true;
        p.phase = Phase::Stored;
        p.done = true;
    });
    assert_eq!(last.await.unwrap(), vec![Bytes::from_static(b"o")]);
}

#[tokio::test]
async fn a_failed_fetch_ends_every_reader_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("temp");
    let (flight, stored) = streaming(&temp);
    flight.received(Bytes::from_static(b"partial"));
    let mut stream = Box::pin(read(flight.clone(), temp, stored));
    assert_eq!(stream.next().await.unwrap().unwrap().len(), 6);
    flight.update(|p| {
        p.phase = Phase::Failed("the transfer broke off".into());
        p.done = true;
    });
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "the transfer broke off");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_reader_that_keeps_up_gets_the_received_chunks_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("temp");
    let (flight, stored) = streaming(&temp);
    let mut stream = Box::pin(read(flight.clone(), temp, stored));
    let chunk = Bytes::from(vec![7u8; 1000]);
    flight.received(chunk.clone());
    let got = stream.next().await.unwrap().unwrap();
    assert_eq!(got.len(), 999);
    assert_eq!(got.as_ptr(), chunk.as_ptr(), "shared, not copied");
}

#[tokio::test]
async fn a_reader_behind_the_window_reads_the_file_even_once_renamed_and_the_window_stays_bounded()
{
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("temp");
    let (flight, stored) = streaming(&temp);
    let chunk = 1024 * 1024;
    let total = 3 * WINDOW_BYTES as usize;
    let content: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    std::fs::write(&temp, &content).unwrap();
    for piece in content.chunks(chunk) {
        flight.received(Bytes::copy_from_slice(piece));
        flight.written(piece.len() as u64);
        let held = flight.window.lock().unwrap().bytes;
        assert!(held <= WINDOW_BYTES, "the window holds {held} bytes");
    }
    flight.update(|p| {
        p.verified = true;
        p.phase = Phase::Stored;
        p.done = true;
    });
    // The commit renamed the file before the reader first looked: it reads the stored blob.
    std::fs::rename(&temp, &stored).unwrap();
    let read: Vec<u8> = read(flight, temp, stored)
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(read.len(), content.len());
    assert!(
        read == content,
        "every byte, from the file and then the window"
    );
}
