//! Counters of what this process did to the store since it opened it, for `/metrics`:
//! segments and bytes ingested (every ingest path ends in `SegmentWriter::commit`, so the CLI,
//! tus uploads and the watched folder are all counted there), and commits not yet in a
//! checkpoint.
//!
//! Invariant: counters only grow while the store is open (atomics, `Relaxed`: a reader may
//! see one counter a commit ahead of another, never one going down); they are not stored.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::Store;

/// The live counters inside the store.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    segments: AtomicU64,
    bytes: AtomicU64,
    duplicates: AtomicU64,
}

impl Counters {
    /// A commit answered: a new segment of `bytes`, or a duplicate of a stored one.
    pub(crate) fn ingested(&self, bytes: u64, duplicate: bool) {
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.segments.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// A snapshot of [`Store::ingest_counts`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct IngestCounts {
    /// New segments committed since the store was opened.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Ingests answered with an already stored segment (same device, same SHA-256).
    pub duplicates: u64,
}

impl Store {
    /// What this process has ingested since it opened the store.
    pub fn ingest_counts(&self) -> IngestCounts {
        let c = &self.inner.counters;
        IngestCounts {
            segments: c.segments.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Commits and changes since the last checkpoint (what the next open would replay).
    pub fn commits_since_checkpoint(&self) -> u64 {
        self.inner.since_checkpoint.load(Ordering::Relaxed)
    }
}
