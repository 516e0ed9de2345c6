//! The work of each background job of the service, one function per job: what one run of
//! restore, retention, checkpoint, audit-head publishing, the disk watch and the fleet
//! publish does, as the
//! `jobs::Work` closure `Service::start` schedules.
//!
//! Invariants: a run never panics and never stops the service: it returns its summary (JSON)
//! or its error as text, which the job runner records (status, metric, log).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{jobs, DiskSpace, Totals, SERVICE_ACTOR};
use crate::store::Store;

/// One pass over the restore queue (store/restore_queue.rs) at `rate`, starting no new
/// restore after `budget` (so a stopping service waits for at most one segment more).
pub(super) fn restore_work(store: &Store, rate: u64, budget: Duration) -> jobs::Work {
    let store = store.clone();
    Box::new(move || {
        if store.restore_stats().pending == 0 {
            return Ok(serde_json::json!({ "skipped": "nothing queued" }));
        }
        let run = store
            .run_restore_queue(&crate::RunLimits {
                rate: Some(rate),
                budget: Some(budget),
            })
            .map_err(|e| e.to_string())?;
        if !run.failed.is_empty() || !run.retry.is_empty() {
            let mut why = run.failed.clone();
            why.extend(run.retry.iter().cloned());
            return Err(format!(
                "{} restore(s) failed: {}",
                why.len(),
                why.join("; ")
            ));
        }
        serde_json::to_value(&run).map_err(|e| e.to_string())
    })
}

/// One retention run by the real clock, recorded like `Store::start_retention`'s runs.
pub(super) fn retention_work(store: &Store, totals: &Arc<Totals>) -> jobs::Work {
    let store = store.clone();
    let totals = Arc::clone(totals);
    Box::new(move || {
        let outcome = store
            .retention_apply(crate::now_us(), false, SERVICE_ACTOR, &mut |_| {})
            .map_err(|e| e.to_string());
        crate::retention::record_retention_run(&store, SERVICE_ACTOR, &outcome);
        let s = outcome?;
        totals.add(&s);
        if !s.failed.is_empty() {
            return Err(format!(
                "{} action(s) failed: {}",
                s.failed.len(),
                s.failed.join("; ")
            ));
        }
        serde_json::to_value(&s).map_err(|e| e.to_string())
    })
}

/// A checkpoint when something was committed since the last one.
pub(super) fn checkpoint_work(store: &Store, totals: &Arc<Totals>) -> jobs::Work {
    let store = store.clone();
    let totals = Arc::clone(totals);
    Box::new(move || {
        let pending = store.commits_since_checkpoint();
        if pending == 0 {
            return Ok(
                serde_json::json!({ "skipped": "nothing committed since the last checkpoint" }),
            );
        }
        let path = store.checkpoint().map_err(|e| e.to_string())?;
        totals.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(serde_json::json!({
            "checkpoint": path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "commits": pending,
        }))
    })
}

/// Publishes the audit chain head when the chain moved (see `Store::republish_audit_head`).
pub(super) fn publish_work(store: &Store, totals: &Arc<Totals>) -> jobs::Work {
    let store = store.clone();
    let totals = Arc::clone(totals);
    let mut last_count: Option<u64> = None;
    Box::new(move || {
        let count = store.audit_head().0;
        if last_count == Some(count) {
            return Ok(serde_json::json!({ "skipped": "the audit chain has not moved" }));
        }
        let published = store.republish_audit_head().map_err(|e| e.to_string())?;
        last_count = Some(count);
        match published {
            Some(head) => {
                totals.head_publishes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    entries = head.count,
                    "published the audit chain head to the cloud"
                );
                Ok(serde_json::json!({ "published": head.count }))
            }
            None => Ok(serde_json::json!({
                "skipped": "the store has no head in the cloud yet (retention apply or audit --publish publishes the first)"
            })),
        }
    })
}

/// Reads free space per data dir; past the watermark, evicts uploaded footage early.
pub(super) fn disk_work(
    store: &Store,
    totals: &Arc<Totals>,
    disks: &Arc<Mutex<Vec<DiskSpace>>>,
) -> jobs::Work {
    let store = store.clone();
    let totals = Arc::clone(totals);
    let disks = Arc::clone(disks);
    // Warned once per crossing of the watermark, not every minute while it stays above.
    let mut was_over = false;
    Box::new(move || {
        let policy = store.policy().map_err(|e| e.to_string())?;
        let stats = store.stats().map_err(|e| e.to_string())?;
        let now: Vec<DiskSpace> = stats
            .disks
            .iter()
            .map(|d| {
                let used = match (d.free_bytes, d.total_bytes) {
                    (Some(f), Some(t)) if t > 0 => Some(t.saturating_sub(f) as f64 / t as f64),
                    _ => None,
                };
                DiskSpace {
                    path: d.path.clone(),
                    available: d.available,
                    free_bytes: d.free_bytes,
                    total_bytes: d.total_bytes,
                    used_ratio: used,
                    high_watermark: policy.high_watermark,
                    over_watermark: d.available && used.is_some_and(|u| u > policy.high_watermark),
                }
            })
            .collect();
        let over: Vec<String> = now
            .iter()
            .filter(|d| d.over_watermark)
            .map(|d| d.path.clone())
            .collect();
        *disks.lock() = now;
        if over.is_empty() {
            was_over = false;
            return Ok(serde_json::json!({ "over_watermark": over }));
        }
        if !std::mem::replace(&mut was_over, true) {
            tracing::warn!(dirs = ?over, watermark = policy.high_watermark, "data dir above the watermark: evicting uploaded footage early");
        }
        let outcome = store
            .relieve_disk_pressure(crate::now_us(), SERVICE_ACTOR)
            .map_err(|e| e.to_string());
        crate::retention::record_retention_run(&store, SERVICE_ACTOR, &outcome);
        let s = outcome?;
        totals.add(&s);
        Ok(serde_json::json!({
            "over_watermark": over,
            "evicted": s.evicted,
            "bytes_reclaimed": s.bytes_reclaimed,
            "failed": s.failed,
        }))
    })
}

/// The `fleet` job as `settings` say: off, or a publish every interval (the first at once).
/// A missing cloud url, or an encrypted store without `fleet_allow_plaintext_metadata`, is
/// refused here, when the service starts.
pub(super) fn fleet_job(store: &Store, settings: &super::Settings) -> crate::Result<jobs::Job> {
    let _ = store; // unused without the `fleet` feature
    match settings.fleet_publish().map_err(crate::Error::Invalid)? {
        #[cfg(feature = "fleet")]
        Some((every, station)) => {
            crate::fleet::check_station(station)?;
            if store.config().encryption.is_some() && !settings.fleet_allow_plaintext {
                return Err(crate::Error::Invalid(
                    "service.fleet_publish_every: this store is encrypted at rest and the fleet table holds its metadata in plaintext: set service.fleet_allow_plaintext_metadata = true if the force accepts that".into(),
                ));
            }
            crate::fleet::Fleet::for_store(store)?;
            let work = fleet_work(store, station, settings.fleet_allow_plaintext);
            jobs::Job::start("fleet", every, Duration::ZERO, work)
                .map_err(|e| crate::Error::Invalid(format!("cannot start a background job: {e}")))
        }
        _ => Ok(jobs::Job::off("fleet")),
    }
}

/// One `fleet publish` of the store as `station` (only the days that changed), under the
/// service's actor. The connection is kept between runs (it reads only the table's new
/// commits), and made again after a failure. Segments that could not be read fail the run
/// (their earlier rows were kept, the rest is published), so the job's status shows them.
#[cfg(feature = "fleet")]
pub(super) fn fleet_work(store: &Store, station: &str, allow_plaintext: bool) -> jobs::Work {
    let store = store.clone();
    let station = station.to_string();
    let mut fleet: Option<crate::fleet::Fleet> = None;
    Box::new(move || {
        let publisher = store
            .with_actor(crate::fleet::FLEET_ACTOR)
            .map_err(|e| e.to_string())?;
        let f = match fleet.take() {
            Some(f) => f,
            None => crate::fleet::Fleet::for_store(&store).map_err(|e| e.to_string())?,
        };
        let report = f
            .publish(&publisher, &station, allow_plaintext)
            .map_err(|e| e.to_string())?;
        fleet = Some(f);
        if !report.unreadable.is_empty() {
            return Err(format!(
                "published, but {} segment(s) could not be read (their earlier rows were kept): {:?}; run `footage verify`",
                report.unreadable.len(),
                &report.unreadable[..report.unreadable.len().min(20)]
            ));
        }
        if report.version.is_none() {
            return Ok(
                serde_json::json!({ "skipped": "nothing changed since the last publish", "table": report.table }),
            );
        }
        serde_json::to_value(&report).map_err(|e| e.to_string())
    })
}
