//! Metadata cleanup of the fleet table's log (Delta Lake's "Metadata Cleanup"): a force's
//! stations commit thousands of times a month, and every engine that opens the table lists
//! the log, so commits older than [`LOG_RETENTION_MS`] that a checkpoint covers are deleted.
//! Run after each checkpoint (`publish.rs`); a failure (a bucket under an immutability
//! policy, say) is only a warning: the log then keeps growing, and stays correct.
//!
//! Invariants (the protocol's rule): let the cut-off commit be the newest commit not newer
//! than the retention, and the cut-off checkpoint the newest checkpoint not newer than it
//! whose log compaction of versions 0 to it is there too (footage's readers start from
//! that); only commits, checkpoints and compactions of versions before the cut-off
//! checkpoint are deleted, oldest first, at most [`MAX_DELETES`] a run, so what is left
//! always starts at a checkpoint (and a compaction) and has no gap after it. The commit at
//! the cut-off checkpoint stays (its `commitInfo` is not in the checkpoint). Versions older
//! than the retention can no longer be time-travelled to.

use std::collections::BTreeSet;

use super::delta::{parse_version, LOG_DIR};
use super::{checkpoint, compact, Fleet};
use crate::error::Result;

/// Commits younger than this are kept: 30 days, Delta's default `delta.logRetentionDuration`.
pub const LOG_RETENTION_MS: i64 = 30 * 86_400_000;
/// The most objects one run deletes; the rest go at the next checkpoint.
pub const MAX_DELETES: usize = 1000;

/// A log object cleanup may delete: a commit, a checkpoint, or a compaction from 0.
enum Entry {
    Commit(u64),
    Checkpoint(u64),
    Compaction(u64),
}

impl Entry {
    fn of(name: &str) -> Option<Entry> {
        if let Some(v) = parse_version(name) {
            return Some(Entry::Commit(v));
        }
        if let Some(y) = checkpoint::parse(name) {
            return Some(Entry::Checkpoint(y));
        }
        compact::parse(name)
            .filter(|&(x, _)| x == 0)
            .map(|(_, y)| Entry::Compaction(y))
    }

    fn version(&self) -> u64 {
        match *self {
            Entry::Commit(v) | Entry::Checkpoint(v) | Entry::Compaction(v) => v,
        }
    }
}

/// Deletes what the retention lets go as of `now_ms` (this station's clock); returns how
/// many objects it deleted.
pub fn run(fleet: &Fleet, now_ms: i64) -> Result<usize> {
    run_later(fleet, now_ms, 0)
}

/// [`run`] as if `later_ms` more had passed on every clock (tests).
fn run_later(fleet: &Fleet, now_ms: i64, later_ms: i64) -> Result<usize> {
    let listed = fleet.list_meta(LOG_DIR, None)?;
    // The bucket's times too, not only this station's clock: one running ahead must not
    // cut into the last 30 days of the log.
    let newest = listed.iter().map(|(_, at)| *at).max().unwrap_or(now_ms);
    let cutoff = now_ms
        .min(newest)
        .saturating_add(later_ms)
        .saturating_sub(LOG_RETENTION_MS);
    let entries: Vec<(Entry, String, i64)> = listed
        .into_iter()
        .filter_map(|(name, at)| Some((Entry::of(&name)?, name, at)))
        .collect();
    let Some(cut_commit) = entries
        .iter()
        .filter_map(|(e, _, at)| match e {
            Entry::Commit(v) if *at <= cutoff => Some(*v),
            _ => None,
        })
        .max()
    else {
        return Ok(0);
    };
    let compactions: BTreeSet<u64> = entries
        .iter()
        .filter_map(|(e, _, _)| match e {
            Entry::Compaction(y) => Some(*y),
            _ => None,
        })
        .collect();
    let Some(cut) = entries
        .iter()
        .filter_map(|(e, _, _)| match e {
            Entry::Checkpoint(y) if *y <= cut_commit && compactions.contains(y) => Some(*y),
            _ => None,
        })
        .max()
    else {
        return Ok(0);
    };
    let mut doomed: Vec<(u64, String)> = entries
        .into_iter()
        .filter(|(e, _, _)| e.version() < cut)
        .map(|(e, name, _)| (e.version(), format!("{LOG_DIR}/{name}")))
        .collect();
    doomed.sort_unstable();
    doomed.truncate(MAX_DELETES);
    let names: Vec<String> = doomed.into_iter().map(|(_, n)| n).collect();
    fleet.delete_all(&names)?;
    tracing::info!(
        deleted = names.len(),
        checkpoint = cut,
        "fleet table: old log entries deleted"
    );
    Ok(names.len())
}

impl Fleet {
    /// Tests: the cleanup as it would run with this station's clock at `now_ms` (ms since
    /// 1970), `later_ms` from now on every clock.
    #[cfg(feature = "internals")]
    pub fn clean_log_at(&self, now_ms: i64, later_ms: i64) -> Result<usize> {
        run_later(self, now_ms.saturating_add(later_ms), later_ms)
    }
}
