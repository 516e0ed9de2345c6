//! How the audit log's entries become durable: `sync_to` (fsyncs shared between concurrent
//! callers, as group commit shares them for volumes) and the `footage-audit-flush` thread
//! that makes batched entries (reads, queries) durable without making their callers wait.
//!
//! Invariants: `sync_to(n)` returns only once the first `n` entries are durable; a failed
//! fsync poisons the log (every later append and sync fails); the flush thread holds the log
//! only while it syncs, and ends when the log is dropped or poisoned.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{AuditLog, Durable, BATCH_DELAY};
use crate::error::{Error, Result};

/// Wakes the flush thread before its next tick.
#[derive(Default)]
pub(super) struct Kick {
    kicked: Mutex<bool>,
    cv: Condvar,
}

impl Kick {
    pub(super) fn kick(&self) {
        *self.kicked.lock() = true;
        self.cv.notify_one();
    }

    /// Waits for a kick or `timeout`, whichever comes first.
    pub(super) fn wait(&self, timeout: Duration) {
        let mut k = self.kicked.lock();
        if !*k {
            self.cv.wait_for(&mut k, timeout);
        }
        *k = false;
    }
}

impl AuditLog {
    /// Returns once the first `n` entries are durable, sharing fsyncs with concurrent callers.
    pub fn sync_to(&self, n: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            if s.poisoned {
                return Err(Error::Poisoned {
                    path: self.state.lock().path.clone(),
                });
            }
            if s.durable.chain.count >= n {
                return Ok(());
            }
            if s.syncing {
                self.synced_cv.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let (file, path, target) = {
                let st = self.state.lock();
                let target = Durable {
                    chain: st.chain,
                    seq: st.seq,
                    end: st.end,
                };
                (Arc::clone(&st.file), st.path.clone(), target)
            };
            drop(s);
            let r = crate::fsio::sync_data(&file, "audit.append");
            s = self.sync.lock();
            s.syncing = false;
            match r {
                Ok(()) => {
                    if target.chain.count > s.durable.chain.count {
                        s.durable = target;
                    }
                    s.last_sync = Instant::now();
                }
                Err(e) => {
                    s.poisoned = true;
                    self.state.lock().poisoned = true;
                    self.synced_cv.notify_all();
                    return Err(Error::io(path, e));
                }
            }
            self.synced_cv.notify_all();
        }
    }

}

/// Every [`BATCH_DELAY`], or at once when an appender's batch is due, makes the entries
/// written so far durable (and writes `HEAD` when a batched entry brought a `head` entry),
/// until the log is gone (or poisoned). Holds the log only while it syncs.
pub(super) fn flush_batches(log: std::sync::Weak<AuditLog>, kick: &Kick) {
    loop {
        kick.wait(BATCH_DELAY);
        let Some(log) = log.upgrade() else { return };
        let written = log.state.lock().chain.count;
        if log.sync.lock().durable.chain.count < written && log.sync_to(written).is_err() {
            return;
        }
        if log.head_pending.swap(false, Ordering::SeqCst) {
            if let Err(e) = log.write_head_file() {
                tracing::error!(error = %e, "cannot write the audit log's HEAD file");
            }
        }
    }
}

