//! Segments recently opened for video, so that the next `Range` request of a review app
//! scrubbing through the same segment neither reads its commit record again nor sniffs its
//! content type: a bounded map from segment id to an opened reader, its ETag and its type.
//!
//! Invariants:
//! - an entry is used only while the catalog's entry of its segment is exactly the one it was
//!   opened under (same flags, same commit record location, same length): a deletion, an
//!   upload, an eviction, a restore or a compaction makes the next request open it again, and
//!   a deleted segment is never served from here;
//! - at most [`CAPACITY`] entries; the oldest opened is dropped first. An entry holds a segment's
//!   chunk list (16 bytes per chunk), not its bytes;
//! - not used when the store handle records reads itself (an actor handle): every request then
//!   opens the segment through `Store::open_segment`, which records it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::catalog::SegmentEntry;
use crate::{SegmentReader, Store};

/// Most segments kept open at once.
pub const CAPACITY: usize = 128;

/// A segment opened for video.
pub struct Opened {
    /// The reader it was opened with, at its start (copied with `fresh` for each request).
    pub reader: SegmentReader,
    /// The `ETag`: the segment's SHA-256 in quotes.
    pub etag: String,
    pub content_type: &'static str,
    /// The catalog entry it was opened under.
    entry: SegmentEntry,
}

/// The recently opened segments.
#[derive(Default)]
pub struct OpenedVideos {
    inner: Mutex<Kept>,
}

/// The entries, and their ids from the oldest opened.
type Kept = (HashMap<u64, Arc<Opened>>, VecDeque<u64>);

impl OpenedVideos {
    /// The opened segment `id`, if it was opened under the catalog entry it has now.
    pub fn get(&self, store: &Store, id: u64) -> Option<Arc<Opened>> {
        if store.records_access() {
            return None;
        }
        let now = store.catalog_entry(id);
        let mut g = self.inner.lock();
        let hit = g.0.get(&id)?;
        if Some(hit.entry) == now {
            return Some(Arc::clone(hit));
        }
        g.0.remove(&id);
        g.1.retain(|&x| x != id);
        None
    }

    /// Keeps `reader` (just opened, at its start) with its ETag and content type, if the
    /// catalog entry is still the one read before opening it (`before`).
    pub fn keep(
        &self,
        store: &Store,
        before: Option<SegmentEntry>,
        reader: &SegmentReader,
        etag: &str,
        content_type: &'static str,
    ) {
        let id = reader.id();
        let (Some(entry), false) = (before, store.records_access()) else {
            return;
        };
        if store.catalog_entry(id) != Some(entry) {
            return;
        }
        let opened = Arc::new(Opened {
            reader: reader.fresh(),
            etag: etag.to_string(),
            content_type,
            entry,
        });
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(id, opened).is_none() {
            order.push_back(id);
        }
        while map.len() > CAPACITY {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }
}
