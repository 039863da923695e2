//! The filesystem store's behaviour: verified uploads, resumption, links, ranges, and the
//! inventory fsck walks.

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::{BlobFile, BlobStore, FsBlobStore, UploadEntry, UploadError};
use crate::domain::oci::{Digest, RepositoryName};

fn repo(name: &str) -> RepositoryName {
    RepositoryName::parse(name).unwrap()
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::from_sha256(&Sha256::digest(bytes))
}

async fn read_all(store: &FsBlobStore, digest: &Digest, start: u64, len: Option<u64>) -> Vec<u8> {
    let mut blob = store
        .open(digest, start, len)
        .await
        .unwrap()
        .expect("stored");
    let mut out = Vec::new();
    blob.reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, blob.len);
    out
}

#[tokio::test]
async fn a_chunked_upload_becomes_a_linked_blob_only_when_its_digest_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::new(dir.path()).unwrap();
    let repository = repo("team/app");
    let bytes = b"hello, berth".repeat(1000);
    let digest = digest_of(&bytes);
    let id = store.start_upload(&repository).await.unwrap();
    let status = store
        .append_upload(&repository, id, Some(0), &mut &bytes[..5000])
        .await
        .unwrap();
    assert_eq!(status.offset, 5000);
    let err = store
        .append_upload(&repository, id, Some(4000), &mut &bytes[4000..])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        UploadError::OutOfOrder {
            expected: 5000,
            got: 4000
        }
    ));
    assert_eq!(
        store.stat(&digest).await.unwrap(),
        None,
        "nothing visible before the end"
    );
    let size = store
        .finish_upload(&repository, id, Some(&mut &bytes[5000..]), &digest)
        .await
        .unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(size));
    assert!(store.is_linked(&repository, &digest).await.unwrap());
    assert!(!store.is_linked(&repo("team/other"), &digest).await.unwrap());
    assert!(
        store
            .linked_in_registry(&repo("team/other"), &digest)
            .await
            .unwrap()
    );
    assert!(
        !store
            .linked_in_registry(&repo("elsewhere/app"), &digest)
            .await
            .unwrap()
    );
    assert_eq!(read_all(&store, &digest, 0, None).await, bytes);
    assert_eq!(read_all(&store, &digest, 7, Some(5)).await, &bytes[7..12]);
    assert!(matches!(
        store.upload_status(&repository, id).await,
        Err(UploadError::Unknown)
    ));
}

#[tokio::test]
async fn a_digest_mismatch_leaves_no_blob_and_no_upload() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::new(dir.path()).unwrap();
    let repository = repo("team/app");
    let claimed = digest_of(b"what the client claims");
    let id = store.start_upload(&repository).await.unwrap();
    let err = store
        .finish_upload(&repository, id, Some(&mut &b"other bytes"[..]), &claimed)
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::DigestMismatch { .. }), "{err}");
    assert_eq!(store.stat(&claimed).await.unwrap(), None);
    assert_eq!(store.stat(&digest_of(b"other bytes")).await.unwrap(), None);
    assert_eq!(
        std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn an_upload_whose_data_a_crash_left_behind_is_unknown_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repo("team/app");
    let id = FsBlobStore::new(dir.path())
        .unwrap()
        .start_upload(&repository)
        .await
        .unwrap();
    // As a kill between the rename of a finished upload and the removal of its directory.
    std::fs::remove_file(dir.path().join("uploads").join(id.to_string()).join("data")).unwrap();
    let restarted = FsBlobStore::new(dir.path()).unwrap();
    assert!(matches!(
        restarted.upload_status(&repository, id).await,
        Err(UploadError::Unknown)
    ));
}

#[tokio::test]
async fn an_upload_resumes_in_a_new_process_and_belongs_to_its_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repo("team/app");
    let bytes = vec![7u8; 300_000];
    let digest = digest_of(&bytes);
    let id = {
        let store = FsBlobStore::new(dir.path()).unwrap();
        let id = store.start_upload(&repository).await.unwrap();
        store
            .append_upload(&repository, id, None, &mut &bytes[..100_000])
            .await
            .unwrap();
        id
    };
    let restarted = FsBlobStore::new(dir.path()).unwrap();
    assert!(matches!(
        restarted.upload_status(&repo("team/other"), id).await,
        Err(UploadError::Unknown)
    ));
    assert_eq!(
        restarted
            .upload_status(&repository, id)
            .await
            .unwrap()
            .offset,
        100_000
    );
    restarted
        .append_upload(&repository, id, Some(100_000), &mut &bytes[100_000..])
        .await
        .unwrap();
    restarted
        .finish_upload(&repository, id, None, &digest)
        .await
        .unwrap();
    assert_eq!(read_all(&restarted, &digest, 0, None).await, bytes);
}

#[tokio::test]
async fn a_cancelled_upload_is_gone_and_unlinking_keeps_the_bytes_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::new(dir.path()).unwrap();
    let repository = repo("team/app");
    let id = store.start_upload(&repository).await.unwrap();
    store.cancel_upload(&repository, id).await.unwrap();
    assert!(matches!(
        store.upload_status(&repository, id).await,
        Err(UploadError::Unknown)
    ));
    let digest = digest_of(b"shared");
    for name in ["team/app", "team/other"] {
        let id = store.start_upload(&repo(name)).await.unwrap();
        store
            .finish_upload(&repo(name), id, Some(&mut &b"shared"[..]), &digest)
            .await
            .unwrap();
    }
    assert!(store.unlink(&repository, &digest).await.unwrap());
    assert!(!store.unlink(&repository, &digest).await.unwrap());
    assert!(store.is_linked(&repo("team/other"), &digest).await.unwrap());
    assert_eq!(store.stat(&digest).await.unwrap(), Some(6));
}

#[tokio::test]
async fn a_sweep_removes_abandoned_uploads_and_temporary_files_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::new(dir.path()).unwrap();
    let repository = repo("team/app");
    let old = store.start_upload(&repository).await.unwrap();
    let fresh = store.start_upload(&repository).await.unwrap();
    let uploads = dir.path().join("uploads");
    std::fs::write(uploads.join(".fetch-crashed"), b"partial").unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    for path in [
        uploads.join(old.to_string()).join("data"),
        uploads.join(".fetch-crashed"),
    ] {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let day = std::time::Duration::from_secs(86400);
    assert_eq!(store.sweep(day).await.unwrap(), 2);
    assert!(!uploads.join(old.to_string()).exists());
    assert!(!uploads.join(".fetch-crashed").exists());
    assert!(matches!(
        store.upload_status(&repository, old).await,
        Err(UploadError::Unknown)
    ));
    assert_eq!(
        store
            .upload_status(&repository, fresh)
            .await
            .unwrap()
            .offset,
        0
    );
    assert_eq!(store.sweep(day).await.unwrap(), 0);
}

#[tokio::test]
async fn files_are_told_apart_by_where_they_lie_and_what_they_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::new(dir.path()).unwrap();
    let hex = "ab".repeat(32);
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(blobs.join("ab")).unwrap();
    std::fs::create_dir_all(blobs.join("cd")).unwrap();
    std::fs::write(blobs.join("ab").join(&hex), b"x").unwrap();
    // The right name under the wrong prefix is not where a blob belongs.
    std::fs::write(blobs.join("cd").join(&hex), b"x").unwrap();
    let files = store.blob_files().await.unwrap();
    assert!(matches!(&files[0], BlobFile::Blob { size: 1, .. }));
    assert!(matches!(&files[1], BlobFile::Stray { .. }));

    let id = store.start_upload(&repo("team/app")).await.unwrap();
    let dead = dir.path().join(format!("uploads/{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dir.path().join("uploads/.put-1"), b"").unwrap();
    std::fs::write(dir.path().join("uploads/notes.txt"), b"").unwrap();
    let entries = store.upload_entries().await.unwrap();
    let intact = dir.path().join(format!("uploads/{id}"));
    assert!(entries.iter().any(|e| matches!(e,
        UploadEntry::Session { path, repository: Some(_), received: Some(0), .. } if *path == intact)));
    assert!(entries.iter().any(|e| matches!(e,
        UploadEntry::Session { path, repository: None, received: None, .. } if *path == dead)));
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, UploadEntry::Temp { .. }))
    );
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, UploadEntry::Stray { .. }))
    );
    assert!(
        store
            .remove_leftover(std::path::Path::new("/etc/hostname"))
            .await
            .is_err()
    );
}
