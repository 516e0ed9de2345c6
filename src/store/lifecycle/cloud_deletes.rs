//! The deletions of cloud copies still owed: `<root>/cloud-deletes`, the list of deleted
//! segments whose cloud copies may remain, and finishing them.
//!
//! Invariant: an id is listed before the `Deleted` record of an uploaded segment becomes
//! durable and leaves the list only once its cloud copy is gone, so no crash or outage leaves a
//! deleted segment's cloud copy behind unnoticed; an id whose segment is still in the catalog
//! (its `Deleted` record never became durable) is skipped, not deleted.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::store::{Inner, Store};

/// `<root>/cloud-deletes`: ids of deleted segments whose cloud copies may remain (one per
/// line). Written before the `Deleted` record of an uploaded segment, cleared once its cloud
/// copy is gone; the next `retention apply` finishes whatever a crash or an outage left.
pub const PENDING_CLOUD_DELETES: &str = "cloud-deletes";

impl Inner {
    fn pending_path(&self) -> PathBuf {
        self.root.join(PENDING_CLOUD_DELETES)
    }

    /// Ids whose cloud copies may still exist although their deletion was decided.
    pub(crate) fn pending_cloud_deletes(&self) -> Result<Vec<u64>> {
        let path = self.pending_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Replaces the list of pending cloud deletions durably (removes the file when empty).
    pub(crate) fn set_pending_cloud_deletes(&self, ids: &[u64]) -> Result<()> {
        let path = self.pending_path();
        if ids.is_empty() {
            match crate::fsio::remove_file(&path) {
                Ok(()) => return crate::log::sync_dir(&self.root, "pending_deletes.dir"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
        crate::log::write_atomic(&path, text.as_bytes())
    }
}

impl Store {
    /// Deletes the cloud copies of deleted segments that a crash or a cloud outage left
    /// behind (`cloud-deletes`). Returns how many were deleted.
    pub fn finish_cloud_deletes(&self) -> Result<usize> {
        self.inner.writable("finishing cloud deletions")?;
        let _serial = self.inner.change_lock.lock();
        let pending = self.inner.pending_cloud_deletes()?;
        if pending.is_empty() {
            return Ok(0);
        }
        let mut left = Vec::new();
        let mut done = 0;
        let mut first_err = None;
        for id in pending {
            if self.inner.catalog.read().get(id).is_some() {
                // Its `Deleted` record never became durable: it is still stored (and still
                // due, so this apply deletes it again).
                continue;
            }
            match self.inner.tier().and_then(|t| t.delete(id)) {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(segment = id, error = %e, "the cloud copy of a deleted segment could not be deleted: kept pending for the next retention run");
                    left.push(id);
                    first_err.get_or_insert(e);
                }
            }
        }
        self.inner.set_pending_cloud_deletes(&left)?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}
