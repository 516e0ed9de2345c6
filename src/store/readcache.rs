//! The store's face of the read cache of evicted footage (`crate::cache`): its counters and
//! its contents, for `stats`, `/metrics`, tests and benchmarks.
//!
//! Invariant: nothing here makes the cache a copy of anything; clearing it only makes the
//! next reads of evicted footage go to the cloud.

use super::Store;
use crate::cache::CacheStats;

impl Store {
    /// The read cache's size and counters; `None` when the store has no cache (not
    /// configured, or a read-only open).
    pub fn read_cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// The blocks the read cache holds as (segment, block index), least recently used first.
    pub fn read_cache_blocks(&self) -> Vec<(u64, u64)> {
        self.inner
            .cache
            .as_ref()
            .map(|c| c.blocks())
            .unwrap_or_default()
    }

    /// Empties the read cache (the next viewing of evicted footage is a first viewing).
    pub fn clear_read_cache(&self) {
        if let Some(c) = &self.inner.cache {
            c.clear();
        }
    }
}
