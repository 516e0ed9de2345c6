//! The restore queue (`<root>/restore-queue`, FORMAT.md §13b): evicted segments waiting to
//! be restored in the background, so a crash or a restart resumes them.
//!
//! Segments get in by `footage restore --queue`, by prefetch (a legal hold placed for a case
//! queues that case's evicted footage; a pin on an evicted segment queues it) and leave when
//! restored, when they turn out to be local or gone, or when their cloud copy is corrupt
//! (never restored: counted as failed and logged). A cloud outage leaves them queued (their
//! failure count goes up) for the next run; so does a restore that would take a data dir past
//! the high watermark (`Error::NoRoom`, not counted as a failure, one warning per pass). `footage serve` drains the queue at
//! `[service] restore_rate` (src/service), `footage restore --queued` in the foreground.
//!
//! Invariants: the file is rewritten atomically (temporary file, fsync, rename) under
//! `Restores::queue_lock`; a segment is queued at most once; a segment leaves the queue only
//! after its restore's change record is durable (or it is known not to need one), so a crash
//! at any point leaves it queued or done, never lost.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::change::FLAG_EVICTED;
use crate::format::restore::{Queued, RestoreQueue};
use crate::store::Store;

/// The queue file, in the store's root.
pub const RESTORE_QUEUE: &str = "restore-queue";

/// What one pass over the queue did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RestoreRun {
    /// Segments brought back from the cloud tier.
    pub restored: usize,
    /// Bytes brought back.
    pub bytes: u64,
    /// Dropped from the queue: already local, or deleted.
    pub skipped: usize,
    /// Dropped for good (corrupt cloud copy), with why.
    pub failed: Vec<String>,
    /// Left queued for the next pass (a cloud outage, say), with why.
    pub retry: Vec<String>,
    /// Left queued because restoring them would take a data dir past the high watermark
    /// (not counted as failures: they are tried again on every pass).
    pub waiting_for_room: usize,
    /// Segments still queued at the end of the pass.
    pub pending: usize,
}

/// The queue's state, as `stats` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RestoreStats {
    /// Segments waiting.
    pub pending: usize,
    /// Bytes of the segments waiting.
    pub pending_bytes: u64,
    /// Restores done by the queue since the store was created (from the queue file).
    pub done_total: u64,
    /// Queued restores failed for good since the store was created.
    pub failed_total: u64,
    /// Bytes restored by the queue since the store was created.
    pub bytes_total: u64,
    /// Restores done since this process opened the store (queue or not).
    pub done: u64,
    /// Restores failed since this process opened the store.
    pub failed: u64,
    /// Bytes restored since this process opened the store.
    pub bytes: u64,
    /// The queued segments, oldest first (at most 100).
    pub queued: Vec<QueuedInfo>,
}

/// One queued segment as `stats` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueuedInfo {
    pub id: String,
    pub queued: String,
    pub reason: String,
    pub failures: u32,
}

/// How a pass paces itself and when it stops.
pub struct RunLimits {
    /// Bytes per second over the pass (None: as fast as the cloud and the disk go).
    pub rate: Option<u64>,
    /// The pass starts no new restore after this long (a service job stops in time).
    pub budget: Option<Duration>,
}

/// Errors in a row after which a pass stops (the cloud or the disk is not answering).
pub const RETRY_STREAK: u32 = 3;
/// Passes a queued segment may fail before it is dropped from the queue as failed.
pub const MAX_FAILURES: u32 = 20;

impl Store {
    fn queue_path(&self) -> std::path::PathBuf {
        self.inner.root.join(RESTORE_QUEUE)
    }

    /// The queue file as it is (empty when there is none).
    pub fn restore_queue(&self) -> Result<RestoreQueue> {
        let path = self.queue_path();
        match std::fs::read(&path) {
            Ok(data) => RestoreQueue::decode(&data).map_err(|e| Error::Corruption {
                path: path.clone(),
                offset: 0,
                what: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RestoreQueue::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn save_queue(&self, q: &RestoreQueue) -> Result<()> {
        crate::log::write_atomic(&self.queue_path(), &q.encode())
    }

    /// Changes the queue under its lock and saves it.
    fn edit_queue<T>(&self, f: impl FnOnce(&mut RestoreQueue) -> T) -> Result<T> {
        let _lock = self.inner.restores.queue_lock.lock();
        let mut q = self.restore_queue()?;
        let before = q.clone();
        let out = f(&mut q);
        if q != before {
            self.save_queue(&q)?;
        }
        Ok(out)
    }

    /// Queues the evicted ones of `ids` for a background restore (not already queued);
    /// returns how many were added.
    pub fn queue_restore(&self, ids: &[u64], actor: &str, reason: &str) -> Result<usize> {
        self.inner.writable("queueing a restore")?;
        let evicted: Vec<u64> = {
            let cat = self.inner.catalog.read();
            ids.iter()
                .copied()
                .filter(|id| cat.get(*id).is_some_and(|e| e.flags & FLAG_EVICTED != 0))
                .collect()
        };
        if evicted.is_empty() {
            return Ok(0);
        }
        let now = self.inner.now_us();
        let added = self.edit_queue(|q| {
            let mut added = 0;
            for id in evicted {
                if q.queued.iter().any(|x| x.segment == id) {
                    continue;
                }
                q.queued.push(Queued {
                    segment: id,
                    queued_us: now,
                    failures: 0,
                    actor: actor.to_string(),
                    reason: reason.to_string(),
                });
                added += 1;
            }
            added
        })?;
        crate::fail::point("restore_queue.after_save");
        if added > 0 {
            tracing::info!(added, reason, "segments queued for restore");
        }
        Ok(added)
    }

    /// Prefetch for a case: queues its evicted segments. A failure is logged, never passed
    /// on (the hold or pin that triggered it is durable and acknowledged already).
    pub(crate) fn prefetch_case(&self, case: &str, actor: &str, why: &str) {
        let ids = self.case_segments(case);
        if let Err(e) = self.queue_restore(&ids, actor, &format!("prefetch:{why}:{case}")) {
            tracing::warn!(case, error = %e, "prefetch: the case's footage could not be queued for restore");
        }
    }

    /// Restores the queued segments in order, paced to `limits.rate`, stopping after
    /// `limits.budget` or after 3 (`RETRY_STREAK`) errors in a row that may pass (the cloud or
    /// the disk not answering: the rest waits for the next pass). A segment that keeps
    /// failing is dropped from the queue after 20 (`MAX_FAILURES`) passes (counted as failed and
    /// logged), so one bad entry never holds up the ones behind it.
    pub fn run_restore_queue(&self, limits: &RunLimits) -> Result<RestoreRun> {
        self.inner.writable("restoring queued segments")?;
        let started = Instant::now();
        let mut run = RestoreRun::default();
        let mut sent: u64 = 0;
        let mut streak = 0u32;
        let mut room_error: Option<Error> = None;
        let queue = self.restore_queue()?;
        for entry in queue.queued {
            if limits.budget.is_some_and(|b| started.elapsed() >= b) || streak >= RETRY_STREAK {
                break;
            }
            let id = entry.segment;
            let local = self
                .inner
                .catalog
                .read()
                .get(id)
                .is_none_or(|e| e.flags & FLAG_EVICTED == 0);
            let outcome = if local {
                None
            } else {
                let mut pace = |n: u64| {
                    sent += n;
                    if let Some(rate) = limits.rate.filter(|r| *r > 0) {
                        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                };
                Some(self.restore_paced(id, &entry.actor, &mut pace))
            };
            match outcome {
                None => {
                    run.skipped += 1;
                    self.edit_queue(|q| q.queued.retain(|x| x.segment != id))?;
                }
                Some(Ok(o)) => {
                    if o.outcome == "restored" {
                        run.restored += 1;
                        run.bytes += o.bytes;
                    } else {
                        run.skipped += 1;
                    }
                    self.edit_queue(|q| {
                        q.queued.retain(|x| x.segment != id);
                        if o.outcome == "restored" {
                            q.done_total += 1;
                            q.bytes_total += o.bytes;
                        }
                    })?;
                }
                Some(Err(Error::NotFound(_))) => {
                    run.skipped += 1;
                    self.edit_queue(|q| q.queued.retain(|x| x.segment != id))?;
                }
                Some(Err(e @ Error::NoRoom { .. })) => {
                    // The disk, not the segment: no failure counted, no streak; smaller
                    // segments behind it may still fit. Logged once for the pass, below.
                    run.waiting_for_room += 1;
                    room_error.get_or_insert(e);
                    continue;
                }
                Some(Err(e @ Error::SegmentCorrupt { .. })) => {
                    tracing::error!(segment = id, error = %e, "restore refused: the cloud copy is corrupt");
                    run.failed.push(format!("restore {id}: {e}"));
                    self.edit_queue(|q| {
                        q.queued.retain(|x| x.segment != id);
                        q.failed_total += 1;
                    })?;
                }
                Some(Err(e)) => {
                    streak += 1;
                    let failures = entry.failures.saturating_add(1);
                    if failures >= MAX_FAILURES {
                        tracing::error!(segment = id, failures, error = %e, "restore given up: dropped from the queue");
                        run.failed.push(format!(
                            "restore {id}: given up after {failures} tries: {e}"
                        ));
                        self.edit_queue(|q| {
                            q.queued.retain(|x| x.segment != id);
                            q.failed_total += 1;
                        })?;
                    } else {
                        run.retry.push(format!("restore {id}: {e}"));
                        self.edit_queue(|q| {
                            if let Some(x) = q.queued.iter_mut().find(|x| x.segment == id) {
                                x.failures = failures;
                            }
                        })?;
                    }
                    continue;
                }
            }
            streak = 0;
        }
        if let Some(e) = room_error {
            tracing::warn!(
                waiting = run.waiting_for_room,
                first = %e,
                "restore queue: segments wait for room below the high watermark"
            );
        }
        run.pending = self.restore_queue()?.queued.len();
        Ok(run)
    }

    /// The queue and this process's restore counters, for `stats`.
    pub fn restore_stats(&self) -> RestoreStats {
        let q = self.restore_queue().unwrap_or_default();
        let rs = &self.inner.restores;
        let pending_bytes = {
            let cat = self.inner.catalog.read();
            q.queued
                .iter()
                .filter_map(|x| cat.get(x.segment).map(|e| e.bytes))
                .sum()
        };
        RestoreStats {
            pending: q.queued.len(),
            pending_bytes,
            done_total: q.done_total,
            failed_total: q.failed_total,
            bytes_total: q.bytes_total,
            done: rs.done.load(Ordering::Relaxed),
            failed: rs.failed.load(Ordering::Relaxed),
            bytes: rs.bytes.load(Ordering::Relaxed),
            queued: q
                .queued
                .iter()
                .take(100)
                .map(|x| QueuedInfo {
                    id: x.segment.to_string(),
                    queued: crate::input::time::format_time(x.queued_us),
                    reason: x.reason.clone(),
                    failures: x.failures,
                })
                .collect(),
        }
    }
}
