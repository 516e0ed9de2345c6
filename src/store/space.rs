//! What a full disk's error tells the operator: whether retention can free space now.
//!
//! Invariant: only runs on the error path (it reads the policy and the catalog), never
//! changes anything, and never hides the original error: if the plan cannot be made the
//! error keeps its generic hint.

use std::sync::Arc;

use super::{Inner, Store};
use crate::error::{Error, DISK_FULL_HINT};

impl Inner {
    /// Rewrites the hint of an [`Error::DiskFull`] met while ingesting: how many segments the
    /// retention policy would delete or evict now, or that nothing can be.
    pub fn explain_disk_full(self: &Arc<Inner>, e: Error) -> Error {
        let Error::DiskFull { path, hint } = e else {
            return e;
        };
        let store = Store {
            inner: Arc::clone(self),
            actor: None,
        };
        let hint = match store.retention_plan(crate::store::now_us(), 0) {
            Ok(plan) => {
                let n = plan
                    .iter()
                    .filter(|i| i.action == "delete" || i.action == "evict")
                    .count();
                if n > 0 {
                    format!(
                        "{n} segment(s) are due for deletion or eviction: run `footage \
                         retention apply`, or {DISK_FULL_HINT}"
                    )
                } else {
                    format!(
                        "nothing can be evicted or deleted now (no segment is due under \
                         policy.toml; held and unexpired footage is kept): {DISK_FULL_HINT}"
                    )
                }
            }
            Err(_) => hint,
        };
        Error::DiskFull { path, hint }
    }
}
