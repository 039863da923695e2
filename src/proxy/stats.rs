//! What each upstream proxy did since this instance started: cache hits and misses, bytes
//! fetched from its remote, remote failures and stale answers served. Counted in memory per
//! instance; the API shows them and the log records misses and failures as they happen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One thing a proxy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Served from what it had cached.
    Hit,
    /// Had to ask its remote for content.
    Miss,
    /// Received this many bytes from its remote.
    Bytes(u64),
    /// Its remote failed.
    Error,
    /// Served a cached answer because its remote failed.
    Stale,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    stale: AtomicU64,
}

/// A proxy's counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Pulls served from the cache.
    pub cache_hits: u64,
    /// Fetches from the remote.
    pub cache_misses: u64,
    /// Bytes received from the remote.
    pub bytes_from_upstream: u64,
    /// Remote failures.
    pub upstream_errors: u64,
    /// Cached answers served while the remote failed.
    pub stale_served: u64,
}

/// The counts of every proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyStats {
    proxies: Arc<Mutex<HashMap<String, Arc<Counters>>>>,
}

impl ProxyStats {
    fn counters(&self, key: &str) -> Arc<Counters> {
        let mut proxies = self.proxies.lock().expect("proxy stats");
        proxies.entry(key.to_owned()).or_default().clone()
    }

    /// Counts `what` for proxy `key`.
    pub fn count(&self, key: &str, what: Count) {
        let counters = self.counters(key);
        let (counter, by) = match what {
            Count::Hit => (&counters.hits, 1),
            Count::Miss => (&counters.misses, 1),
            Count::Bytes(n) => (&counters.bytes, n),
            Count::Error => (&counters.errors, 1),
            Count::Stale => (&counters.stale, 1),
        };
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Drops proxy `key`'s counts: it was deleted, and one created again starts from zero.
    pub fn forget(&self, key: &str) {
        self.proxies.lock().expect("proxy stats").remove(key);
    }

    /// Proxy `key`'s counts now.
    pub fn snapshot(&self, key: &str) -> Snapshot {
        let counters = self.counters(key);
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            cache_hits: read(&counters.hits),
            cache_misses: read(&counters.misses),
            bytes_from_upstream: read(&counters.bytes),
            upstream_errors: read(&counters.errors),
            stale_served: read(&counters.stale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_proxy() {
        let stats = ProxyStats::default();
        stats.count("hub", Count::Hit);
        stats.count("hub", Count::Hit);
        stats.count("hub", Count::Bytes(100));
        stats.count("quay", Count::Error);
        assert_eq!(
            stats.snapshot("hub"),
            Snapshot {
                cache_hits: 2,
                bytes_from_upstream: 100,
                ..Default::default()
            }
        );
        assert_eq!(stats.snapshot("quay").upstream_errors, 1);
        assert_eq!(stats.snapshot("none"), Snapshot::default());
        stats.forget("hub");
        assert_eq!(stats.snapshot("hub"), Snapshot::default());
        assert_eq!(stats.snapshot("quay").upstream_errors, 1);
    }
}
