//! The read cache of evicted footage: blocks of segments' cloud copies kept on local disk
//! (`[cache]` in footage.toml), so footage watched once is watched again at local speed.
//!
//! One file per 1 MiB block, holding the block exactly as the cloud stores it (sealed in an
//! encrypted store) behind a small header ([`file`]); the index (segment, block) -> (size,
//! recency) lives in memory, rebuilt at open from the file names, sizes and modification
//! times (the LRU order after a restart is that of the files' mtimes, which a hit refreshes
//! when older than a minute).
//!
//! In front of the files, a small in-memory layer ([`memory`], [`memory::MEMORY_BYTES`])
//! keeps the last blocks read from them as verified plaintext: a block read in many small
//! ranges (a viewer's range requests) is read from its file and checked once, then handed out
//! from memory.
//!
//! Invariants:
//! - the cache is never a copy of anything: only blocks the cloud holds and that passed the
//!   `meta.json` CRC32 are put in it; it is consulted only for segments with a verified cloud
//!   copy, never counted by retention or verify, and a segment's blocks are dropped when the
//!   segment is deleted (and at open, those of segments no longer in the catalog);
//! - every hit on a file is checked again (header identity, header CRC, payload CRC against
//!   `meta.json`); a file that fails is dropped and the block fetched from the cloud; a hit
//!   in memory hands out bytes that passed those checks when they were read from their file;
//! - no block of a deleted segment stays cached: [`BlockCache::drop_segment`] marks the
//!   segment dead and drops its blocks under the index lock, and a fill (or a memory insert)
//!   checks the dead set under the same lock before its rename, so a read in flight during
//!   the deletion cannot put a block back;
//! - bytes of cache files in place plus bytes reserved by fills in progress never exceed
//!   `max_bytes`, under any number of concurrent readers: a fill reserves its file's size
//!   (evicting least-recently-used blocks) before it writes a byte, and two fills of one
//!   block keep one file;
//! - a fill is written to a `fill-*.tmp` file and renamed into place under the index lock;
//!   a crash leaves at most that temp file, removed at the next open. Nothing is fsynced:
//!   a file a power cut damaged fails its CRCs and is dropped on first use;
//! - in an encrypted store the cache holds only sealed blocks: never plaintext at rest;
//! - a cache failure (full disk, I/O error) never fails a read: the block is served from
//!   the cloud and the error is logged and counted.

pub mod file;
mod index;
pub mod memory;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use file::Identity;
use index::Index;
use memory::MemoryBlocks;

/// (segment id, block index).
pub(crate) type Key = (u64, u64);

/// A hit moves a file's mtime (the LRU order a restart sees) only if it is older than this.
const MTIME_GRAIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Counters and size of the read cache (`stats`, `/api/stats`, `/metrics`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CacheStats {
    /// Directory of the cache files.
    pub dir: String,
    /// Budget of the cache files, bytes.
    pub max_bytes: u64,
    /// Bytes of cache files in place (headers included).
    pub bytes: u64,
    /// Blocks held in cache files.
    pub blocks: u64,
    /// Blocks served from the cache since the store was opened (from its files or from
    /// memory).
    pub hits: u64,
    /// Of `hits`, those served from the in-memory layer (verified plaintext of blocks read
    /// from the files recently).
    pub memory_hits: u64,
    /// Bytes held by the in-memory layer.
    pub memory_bytes: u64,
    /// Blocks held by the in-memory layer.
    pub memory_blocks: u64,
    /// Budget of the in-memory layer, bytes.
    pub memory_max_bytes: u64,
    /// Blocks fetched from the cloud for want of a cached copy.
    pub misses: u64,
    /// Blocks dropped to make room (least recently used first).
    pub evictions: u64,
    /// Cached blocks that failed their checks on a read, dropped and fetched again.
    pub corrupt: u64,
    /// Blocks that could not be cached (I/O error, full disk).
    pub fill_errors: u64,
}

/// The read cache of one store (the owner's: read-only opens have none).
pub struct BlockCache {
    dir: PathBuf,
    store_id: [u8; 16],
    sealed: bool,
    max_bytes: u64,
    index: Mutex<Index>,
    hits: AtomicU64,
    memory_hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    corrupt: AtomicU64,
    fill_errors: AtomicU64,
    next_temp: AtomicU64,
}

impl BlockCache {
    /// Opens (creating) the cache in `dir` with a budget of `max_bytes`: removes fills a
    /// crash left, files of segments `live` says are gone and files that are not the size
    /// of a block, then indexes the rest oldest-first by mtime (dropping the oldest while
    /// over budget). `sealed`: the store is encrypted (blocks are sealed).
    pub fn open(
        dir: &Path,
        store_id: [u8; 16],
        sealed: bool,
        max_bytes: u64,
        live: impl Fn(u64) -> bool,
    ) -> Result<BlockCache> {
        crate::fsio::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let largest = file::HEADER_LEN as u64
            + crate::format::cloud::BLOCK_SIZE
            + if sealed {
                crate::crypt::OVERHEAD as u64
            } else {
                0
            };
        let mut found: Vec<(SystemTime, Key, u64)> = Vec::new();
        let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| Error::io(dir, e))?;
            let path = ent.path();
            if file::is_temp(&path) {
                tracing::info!(path = %path.display(), "removing a cache fill a crash left");
                remove(&path);
                continue;
            }
            let Some(key) = ent.file_name().to_str().and_then(file::parse_name) else {
                continue; // not ours: left alone
            };
            let Ok(md) = ent.metadata() else { continue };
            let len = md.len();
            if !live(key.0) || len <= file::HEADER_LEN as u64 || len > largest {
                remove(&path);
                continue;
            }
            let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, key, len));
        }
        found.sort();
        let mut index = Index {
            memory: MemoryBlocks::new(memory::MEMORY_BYTES),
            ..Index::default()
        };
        for (_, key, len) in found {
            index.insert(key, len);
        }
        let cache = BlockCache {
            dir: dir.to_path_buf(),
            store_id,
            sealed,
            max_bytes,
            index: Mutex::new(index),
            hits: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            fill_errors: AtomicU64::new(0),
            next_temp: AtomicU64::new(0),
        };
        {
            let mut ix = cache.index.lock();
            cache.make_room(&mut ix, 0);
        }
        Ok(cache)
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: Key) -> PathBuf {
        self.dir.join(file::name(key.0, key.1))
    }

    fn identity(&self, key: Key) -> Identity {
        Identity {
            store_id: self.store_id,
            segment: key.0,
            block: key.1,
            sealed: self.sealed,
        }
    }

    /// Whether block `block` of `segment` is cached, in memory or in a file (a file may
    /// still fail its checks).
    pub fn contains(&self, segment: u64, block: u64) -> bool {
        let ix = self.index.lock();
        ix.memory.contains((segment, block)) || ix.entries.contains_key(&(segment, block))
    }

    /// The verified plaintext of a block, if the in-memory layer holds it (counted as a
    /// hit; the block's file, if any, counts as recently used too).
    pub fn get_memory(&self, segment: u64, block: u64) -> Option<Bytes> {
        let key = (segment, block);
        let got = {
            let mut ix = self.index.lock();
            let got = ix.memory.get(key);
            if got.is_some() {
                ix.touch(key);
            }
            got
        };
        if got.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// Keeps the plaintext of a block that the caller read from this cache's files (through
    /// [`BlockCache::get`]) and checked (opened, in an encrypted store). Not for a deleted
    /// segment.
    pub fn put_memory(&self, segment: u64, block: u64, plain: Bytes) {
        let mut ix = self.index.lock();
        if !ix.dead.contains(&segment) {
            ix.memory.insert((segment, block), plain);
        }
    }

    /// The stored bytes of a block, if cached and sound: `len` bytes whose CRC32 is `crc`
    /// (from `meta.json`). A file that fails a check is dropped (counted as corrupt). Counts
    /// hits; the caller counts the blocks it then fetches ([`BlockCache::missed`]).
    pub fn get(&self, segment: u64, block: u64, len: usize, crc: u32) -> Option<Vec<u8>> {
        let key = (segment, block);
        let found = self.index.lock().touch(key);
        let got = if found {
            self.read(key, len, crc)
        } else {
            None
        };
        if got.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// Counts `n` blocks fetched from the cloud for want of a cached copy.
    pub fn missed(&self, n: u64) {
        self.misses.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads and checks the file of `key`; drops it if it fails.
    fn read(&self, key: Key, len: usize, crc: u32) -> Option<Vec<u8>> {
        let path = self.path(key);
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                // Dropped by a concurrent eviction, or removed by hand.
                tracing::debug!(path = %path.display(), error = %e, "cache file gone");
                self.forget(key);
                return None;
            }
        };
        let mut h = [0u8; file::HEADER_LEN];
        let mut payload = Vec::with_capacity(len);
        // One byte more than expected is read, so a file too long fails its check.
        let read = f
            .read_exact(&mut h)
            .and_then(|()| (&mut f).take(len as u64 + 1).read_to_end(&mut payload));
        let verdict = match read {
            Ok(_) => file::check(&h, &payload, &self.identity(key), len, crc),
            Err(e) => Err(format!("cannot be read: {e}")),
        };
        match verdict {
            Ok(()) => {
                // The recency a restart will see (best effort, to the minute: an mtime
                // update dirties the inode, so not on every hit).
                let now = SystemTime::now();
                let stale = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_none_or(|age| age >= MTIME_GRAIN);
                if stale {
                    let _ = f.set_modified(now);
                }
                Some(payload)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), why = %why, "dropping a damaged cache file");
                self.drop_corrupt(key);
                None
            }
        }
    }

    fn drop_corrupt(&self, key: Key) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        self.forget(key);
    }

    /// Removes `key` from the index and its file from disk.
    fn forget(&self, key: Key) {
        let mut ix = self.index.lock();
        if ix.remove(key).is_some() {
            remove(&self.path(key));
        }
    }

    /// Evicts least-recently-used blocks until `extra` more bytes fit in the budget; false
    /// if they cannot (the rest of the budget is reserved by fills in progress).
    fn make_room(&self, ix: &mut Index, extra: u64) -> bool {
        while ix.used + ix.reserved + extra > self.max_bytes {
            let Some((_, key)) = ix.lru.first_key_value().map(|(t, k)| (*t, *k)) else {
                return false;
            };
            ix.remove(key);
            remove(&self.path(key));
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Keeps the stored bytes of a block the caller fetched from the cloud and checked
    /// against `meta.json`. Never fails: a block that cannot be cached is only counted.
    pub fn put(&self, segment: u64, block: u64, payload: &[u8]) {
        let key = (segment, block);
        let bytes = (file::HEADER_LEN + payload.len()) as u64;
        {
            let mut ix = self.index.lock();
            if ix.entries.contains_key(&key) || bytes > self.max_bytes || ix.dead.contains(&segment)
            {
                return;
            }
            if !self.make_room(&mut ix, bytes) {
                return;
            }
            ix.reserved += bytes;
        }
        let seq = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(
            "fill-{}-{seq}{}",
            std::process::id(),
            file::TEMP_SUFFIX
        ));
        let written = (|| {
            let f = crate::fsio::create_file(&tmp, crate::fsio::Existing::Refuse)?;
            let h = file::header(&self.identity(key), payload);
            crate::fsio::write_all_at(&f, &h, 0)?;
            crate::fsio::write_all_at(&f, payload, file::HEADER_LEN as u64)
        })();
        crate::fail::point("cache.fill.written");
        crate::fail::hook("cache.fill.before_rename");
        let mut ix = self.index.lock();
        ix.reserved -= bytes;
        if let Err(e) = written {
            drop(ix);
            tracing::warn!(path = %tmp.display(), error = %e, "cannot fill the read cache");
            self.fill_errors.fetch_add(1, Ordering::Relaxed);
            remove(&tmp);
            return;
        }
        if ix.entries.contains_key(&key) || ix.dead.contains(&segment) {
            // Another reader filled it meanwhile (one file is enough), or its segment was
            // deleted since the fill began (checked under the lock the deletion takes).
            drop(ix);
            remove(&tmp);
            return;
        }
        let path = self.path(key);
        match crate::fsio::rename(&tmp, &path) {
            Ok(()) => ix.insert(key, bytes),
            Err(e) => {
                drop(ix);
                tracing::warn!(path = %path.display(), error = %e, "cannot fill the read cache");
                self.fill_errors.fetch_add(1, Ordering::Relaxed);
                remove(&tmp);
                return;
            }
        }
        drop(ix);
        crate::fail::point("cache.fill.renamed");
    }

    /// Drops every cached block of `segment` (it was deleted) and refuses any later fill of
    /// it, including those in flight now. Returns how many blocks were dropped.
    pub fn drop_segment(&self, segment: u64) -> usize {
        let mut ix = self.index.lock();
        ix.dead.insert(segment);
        ix.memory.drop_segment(segment);
        let keys: Vec<Key> = ix
            .entries
            .range((segment, 0)..=(segment, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for &key in &keys {
            ix.remove(key);
            remove(&self.path(key));
        }
        keys.len()
    }

    /// Drops every cached block (for benchmarks and tests of a cold cache).
    pub fn clear(&self) {
        let mut ix = self.index.lock();
        ix.memory.clear();
        let keys: Vec<Key> = ix.entries.keys().copied().collect();
        for key in keys {
            ix.remove(key);
            remove(&self.path(key));
        }
    }

    /// Cached blocks, least recently used first (for tests).
    pub fn blocks(&self) -> Vec<(u64, u64)> {
        self.index.lock().lru.values().copied().collect()
    }

    pub fn stats(&self) -> CacheStats {
        let (bytes, blocks, memory) = {
            let ix = self.index.lock();
            (ix.used, ix.entries.len() as u64, ix.memory.size())
        };
        CacheStats {
            dir: self.dir.display().to_string(),
            max_bytes: self.max_bytes,
            bytes,
            blocks,
            hits: self.hits.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            memory_bytes: memory.0,
            memory_blocks: memory.1,
            memory_max_bytes: memory.2,
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            fill_errors: self.fill_errors.load(Ordering::Relaxed),
        }
    }
}

/// Removes a cache file; one already gone is fine, another failure is logged (the file is
/// then no longer indexed, so at worst it takes space until the next open).
fn remove(path: &Path) {
    match crate::fsio::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove a cache file"),
    }
}

#[cfg(test)]
mod tests;
