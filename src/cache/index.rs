//! The read cache's in-memory index: which blocks are on disk, their sizes and their
//! recency (an LRU by tick), the bytes in use and reserved, the verified blocks kept in memory,
//! and the segments deleted since open.
//!
//! Invariants: `used` is the sum of the entries' bytes; `lru` and `entries` name the same
//! blocks (one tick each); a deleted segment stays in `dead` until the cache is reopened.

use std::collections::{BTreeMap, HashSet};

use super::{Key, MemoryBlocks};

/// What the index keeps per cached block (small: the file is found by its name).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// File bytes (header and payload), what the budget counts.
    pub(super) bytes: u64,
    /// Recency: larger is more recently used.
    pub(super) tick: u64,
}

#[derive(Default)]
pub(super) struct Index {
    pub(super) entries: BTreeMap<Key, Entry>,
    /// tick -> key, oldest first.
    pub(super) lru: BTreeMap<u64, Key>,
    pub(super) next_tick: u64,
    /// Bytes of the files in place.
    pub(super) used: u64,
    /// Bytes reserved by fills in progress.
    pub(super) reserved: u64,
    /// Verified plaintext of recently read blocks.
    pub(super) memory: MemoryBlocks,
    /// Segments deleted since the cache was opened: never cached again (a read in flight
    /// when its segment was deleted must not put a block back). Ids are never reused.
    pub(super) dead: HashSet<u64>,
}

impl Index {
    pub(super) fn touch(&mut self, key: Key) -> bool {
        let tick = self.next_tick;
        let Some(e) = self.entries.get_mut(&key) else {
            return false;
        };
        self.lru.remove(&e.tick);
        e.tick = tick;
        self.lru.insert(tick, key);
        self.next_tick += 1;
        true
    }

    pub(super) fn insert(&mut self, key: Key, bytes: u64) {
        let tick = self.next_tick;
        self.next_tick += 1;
        self.entries.insert(key, Entry { bytes, tick });
        self.lru.insert(tick, key);
        self.used += bytes;
    }

    pub(super) fn remove(&mut self, key: Key) -> Option<Entry> {
        let e = self.entries.remove(&key)?;
        self.lru.remove(&e.tick);
        self.used -= e.bytes;
        Some(e)
    }
}
