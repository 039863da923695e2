//! Who is using a data directory. Every `berth serve` holds a shared lock on `<root>/.lock`
//! while it runs, and `berth fsck --repair` takes it exclusively, so a repair never moves blobs
//! or deletes manifests under a running server. The operating system drops the lock with the
//! process, however it ends, so a crash never leaves a directory locked.

use std::fs::{File, OpenOptions, TryLockError};

use super::{FsBlobStore, StorageError};

/// A held lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock in a mode that excludes this one.
    #[error("{0} is in use by another Berth process")]
    Busy(String),
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl FsBlobStore {
    /// Takes the lock a server holds: shared with other servers, refused while a repair runs.
    pub fn lock_shared(&self) -> Result<DirLock, LockError> {
        self.lock(File::try_lock_shared)
    }

    /// Takes the lock a repair needs: refused while any server holds the directory.
    pub fn lock_exclusive(&self) -> Result<DirLock, LockError> {
        self.lock(File::try_lock)
    }

    fn lock(&self, take: fn(&File) -> Result<(), TryLockError>) -> Result<DirLock, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))
            .map_err(StorageError::from)?;
        match take(&file) {
            Ok(()) => Ok(DirLock(file)),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy(self.root.display().to_string())),
            Err(TryLockError::Error(e)) => Err(StorageError::from(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_share_the_directory_and_a_repair_waits_for_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        let first = store.lock_shared().unwrap();
        let second = store.lock_shared().unwrap();
        assert!(matches!(store.lock_exclusive(), Err(LockError::Busy(_))));
        drop(first);
        assert!(matches!(store.lock_exclusive(), Err(LockError::Busy(_))));
        drop(second);
        let repair = store.lock_exclusive().unwrap();
        assert!(matches!(store.lock_shared(), Err(LockError::Busy(_))));
        drop(repair);
        store.lock_shared().unwrap();
    }
}
