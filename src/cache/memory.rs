//! The in-memory layer of the read cache: the most recently read blocks of evicted footage,
//! kept as the verified plaintext the tier handed out, so a block read in many small ranges
//! (a viewer's 64 KiB range requests, each through a new reader) is read from its cache file
//! and checked once, not once per range.
//!
//! Invariants:
//! - only bytes that passed their block's checks are inserted: the tier inserts a block right
//!   after its cache file passed its header and payload CRCs against the CRC32 of `meta.json`
//!   (and, in an encrypted store, after its AES-256-GCM tag was checked), and a hit hands out
//!   those same bytes (shared, never copied or modified);
//! - the bytes held never exceed the budget ([`MEMORY_BYTES`]); the least recently used block
//!   goes first;
//! - memory only: nothing here reaches disk (an encrypted store's plaintext never does);
//! - the owner ([`super::BlockCache`]) drops a segment's blocks when it is deleted and never
//!   inserts a block of a deleted segment (it checks its dead set under the same lock).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::Key;

/// Budget of the in-memory layer: eight 1 MiB blocks, enough for a few viewers each reading
/// through a block in small ranges, small beside the server's other buffers.
pub const MEMORY_BYTES: u64 = 8 << 20;

/// Verified plaintext blocks, least recently used first out.
#[derive(Default)]
pub struct MemoryBlocks {
    max_bytes: u64,
    entries: HashMap<Key, (Bytes, u64)>,
    /// tick -> key, oldest first.
    lru: BTreeMap<u64, Key>,
    next_tick: u64,
    used: u64,
}

impl MemoryBlocks {
    pub fn new(max_bytes: u64) -> MemoryBlocks {
        MemoryBlocks {
            max_bytes,
            ..MemoryBlocks::default()
        }
    }

    /// The block, if held (and marks it most recently used).
    pub fn get(&mut self, key: Key) -> Option<Bytes> {
        let tick = self.next_tick;
        let (bytes, t) = self.entries.get_mut(&key)?;
        self.lru.remove(t);
        *t = tick;
        self.lru.insert(tick, key);
        self.next_tick += 1;
        Some(bytes.clone())
    }

    pub fn contains(&self, key: Key) -> bool {
        self.entries.contains_key(&key)
    }

    /// Keeps `bytes` for `key`, dropping least recently used blocks to stay in budget. A
    /// block larger than the whole budget is not kept.
    pub fn insert(&mut self, key: Key, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.max_bytes {
            return;
        }
        self.remove(key);
        while self.used + len > self.max_bytes {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.entries.remove(&old) {
                self.used -= b.len() as u64;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.entries.insert(key, (bytes, tick));
        self.lru.insert(tick, key);
        self.used += len;
    }

    pub fn remove(&mut self, key: Key) {
        if let Some((b, t)) = self.entries.remove(&key) {
            self.lru.remove(&t);
            self.used -= b.len() as u64;
        }
    }

    /// Drops every block of `segment`.
    pub fn drop_segment(&mut self, segment: u64) {
        let keys: Vec<Key> = self
            .entries
            .keys()
            .filter(|k| k.0 == segment)
            .copied()
            .collect();
        for k in keys {
            self.remove(k);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
        self.used = 0;
    }

    /// (bytes held, blocks held, budget).
    pub fn size(&self) -> (u64, u64, u64) {
        (self.used, self.entries.len() as u64, self.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_and_the_least_recently_used_block_goes_first() {
        let mut m = MemoryBlocks::new(3000);
        for b in 0..3u64 {
            m.insert((1, b), Bytes::from(vec![b as u8; 1000]));
        }
        assert_eq!(m.get((1, 0)).as_deref(), Some(&[0u8; 1000][..]));
        m.insert((1, 3), Bytes::from(vec![3; 1000])); // block 1 is the oldest
        assert!(!m.contains((1, 1)));
        assert!(m.contains((1, 0)) && m.contains((1, 2)) && m.contains((1, 3)));
        assert_eq!(m.size(), (3000, 3, 3000));
        m.insert((2, 0), Bytes::from(vec![9; 3001]));
        assert!(!m.contains((2, 0)), "larger than the budget");
        m.insert((1, 3), Bytes::from(vec![4; 500])); // replaced, not counted twice
        assert_eq!(m.size(), (2500, 3, 3000));
        m.drop_segment(1);
        assert_eq!(m.size(), (0, 0, 3000));
    }
}
