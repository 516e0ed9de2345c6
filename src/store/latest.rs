//! The newest footage: `Store::latest` lists the segments with the latest start times, newest
//! first, for the review page's opening view ("what came in last") without a search form.
//!
//! Invariants:
//! - the answer is read from the index's time list (every catalog entry is in it exactly
//!   once, sorted by (start, id)) under one catalog read lock, so it is one consistent state;
//! - it is bounded: at most [`MAX_PAGE`] results whatever the caller asks;
//! - through an actor handle it is recorded in the audit log like a query (action `query`,
//!   details `{"latest": N, "results": K}`); the HTTP server records its own entry.

use super::Store;
use crate::error::{Error, Result};
use crate::index::query::{FindResult, MAX_PAGE};

impl Store {
    /// The `n` segments with the latest start times, newest first (ties: higher id first), as
    /// results without hits. `n` must be from 1 to [`MAX_PAGE`].
    pub fn latest(&self, n: usize) -> Result<Vec<FindResult>> {
        if !(1..=MAX_PAGE).contains(&n) {
            return Err(Error::Invalid(format!(
                "latest: the number of segments must be from 1 to {MAX_PAGE}, not {n}"
            )));
        }
        let results: Vec<FindResult> = {
            let cat = self.inner.catalog.read();
            cat.index
                .time
                .iter()
                .rev()
                .filter_map(|&(_, id)| cat.get(id))
                .take(n)
                .map(|e| FindResult {
                    id: e.id,
                    start_us: e.start_us,
                    end_us: e.end_us,
                    hits: Vec::new(),
                    hits_omitted: 0,
                })
                .collect()
        };
        self.record_access(
            crate::audit::Action::Query,
            None,
            serde_json::json!({"latest": n, "results": results.len()}),
        )?;
        Ok(results)
    }
}
