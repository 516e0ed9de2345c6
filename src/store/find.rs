//! Finding footage: `Store::find` runs a [`Query`] against the catalog's index under a read
//! lock (ingest waits only for the moment a commit is applied), and `Store::track` reads a
//! segment's GPS track from the index's track file (or, if that copy is damaged, from the
//! segment's commit record).
//!
//! Invariant: results reflect one consistent catalog state (the whole query runs under one
//! read lock).

use super::Store;
use crate::error::{Error, Result};
use crate::index::query::{self, Page, Query};
use crate::index::tracks::NO_TRACK;
use crate::meta::GpsFix;

/// Sizes of the index, for `stats` and benchmarks.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct IndexStats {
    /// Segments indexed.
    pub segments: usize,
    /// Entries of the spatial index (one per segment, grid cell and cell size its track crosses).
    pub postings: usize,
    /// Heap bytes of the catalog (segment table, dedup, names).
    pub catalog_heap_bytes: usize,
    /// Heap bytes of the index (time/officer/device lists, labels, postings).
    pub index_heap_bytes: usize,
    /// Bytes of the track file (mapped, not heap).
    pub track_file_bytes: u64,
}

impl Store {
    /// Runs a query; returns one page of results sorted by (start, id). Through an actor
    /// handle it is recorded in the audit log (action `query`, details = the query).
    pub fn find(&self, q: &Query) -> Result<Page> {
        let page = crate::catalog::search::run(&self.inner.catalog.read(), q)?;
        // Without an actor nothing is recorded: the details are not even built.
        if self.actor.is_some() {
            let mut details = super::audit::query_details(q);
            details["results"] = page.results.len().into();
            self.record_access(crate::audit::Action::Query, None, details)?;
        }
        Ok(page)
    }

    /// Every result of a query, fetched page by page (recorded once, like `find`).
    pub fn find_all(&self, q: &Query) -> impl Iterator<Item = Result<query::FindResult>> + '_ {
        let recorded = match self.actor {
            Some(_) => self.record_access(
                crate::audit::Action::Query,
                None,
                super::audit::query_details(q),
            ),
            None => Ok(()),
        };
        let mut pending_error = recorded.err();
        let mut q = q.clone();
        let page_size = q.limit.unwrap_or(query::MAX_PAGE);
        q.limit = Some(page_size);
        let mut buf = std::vec::IntoIter::default();
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(e) = pending_error.take() {
                done = true;
                return Some(Err(e));
            }
            if let Some(r) = buf.next() {
                return Some(Ok(r));
            }
            if done {
                return None;
            }
            match crate::catalog::search::run(&self.inner.catalog.read(), &q) {
                Ok(page) => {
                    done = page.next.is_none();
                    q.cursor = page.next;
                    buf = page.results.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })
    }

    /// The GPS track of a segment (empty if it has none).
    pub fn track(&self, id: u64) -> Result<Vec<GpsFix>> {
        let cat = self.inner.catalog.read();
        let e = cat.get(id).ok_or_else(|| Error::NotFound(id.to_string()))?;
        if e.track == NO_TRACK {
            return Ok(Vec::new());
        }
        let copy = cat
            .index
            .tracks
            .get(e.track, id)
            .ok()
            .and_then(|t| t.to_vec().ok());
        drop(cat);
        match copy {
            Some(fixes) => Ok(fixes),
            None => Ok(self.inner.load_commit(id, true)?.meta.gps),
        }
    }

    /// Sizes of the catalog and index.
    pub fn index_stats(&self) -> IndexStats {
        let cat = self.inner.catalog.read();
        IndexStats {
            segments: cat.len(),
            postings: cat.index.postings(),
            catalog_heap_bytes: cat.heap_bytes(),
            index_heap_bytes: cat.index.heap_bytes(),
            track_file_bytes: cat.index.tracks.file_bytes(),
        }
    }
}
