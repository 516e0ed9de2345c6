//! Retention: decides, from `policy.toml` and each segment's categories, holds and age, what
//! to upload, evict and delete, and does it (`footage retention plan | apply`).
//!
//! Invariants:
//! - nothing held is ever deleted; nothing is evicted without a verified cloud copy, nor while
//!   a pin is in force (a pin never keeps anything past delete_after); nothing
//!   is deleted before `end + delete_after` (the longest of its categories);
//! - a failure on one segment is reported and the others proceed; a later apply retries it;
//! - the decisions use one snapshot of the catalog, taken at the start;
//! - an apply that changes anything decides by a time no later than the real clock (plus
//!   [`CLOCK_SKEW_US`]) unless the store was created with a simulated clock; the summary and
//!   every audit entry of the run record the clock and the time used.

mod background;
mod pressure;
/// The retention policy (policy.toml), also read by the store when it opens: src/policy.rs.
pub use crate::policy;

#[cfg(feature = "server")]
pub(crate) use background::record_retention_run;
pub use background::{Clock, RetentionHandle, RetentionOptions};

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED, PIN_FOREVER};
use crate::index::LabelKind;
use crate::input::time::format_time;
pub(crate) use crate::store::RunClock;
use crate::store::Store;
use policy::{Effective, Policy};

/// What `retention apply` did (or, with dry_run, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Segments copied to the cloud tier.
    pub uploaded: usize,
    /// Segments whose local bytes were dropped (a verified cloud copy remains).
    pub evicted: usize,
    /// Segments deleted everywhere (past delete_after, not held).
    pub deleted: usize,
    /// Segments past delete_after kept because of a legal hold.
    pub held: usize,
    /// Segments due for eviction (or evictable under disk pressure) kept local by a pin.
    pub pinned: usize,
    /// Data dirs still above the high watermark although everything evictable is gone,
    /// because pinned footage fills them (one line each; unpin something or add disk).
    pub pins_fill_disk: Vec<String>,
    /// Sealed volumes rewritten by compaction (see `Store::compact`).
    pub compacted: usize,
    /// Bytes freed on the data dirs (evicted and deleted segments, compaction).
    pub bytes_reclaimed: u64,
    /// True when nothing was changed: the counts say what an apply would do.
    pub dry_run: bool,
    /// The store's clock: `"real"`, or `"simulated"` for a store created with
    /// `footage init --simulated-clock`.
    pub clock: String,
    /// The time the run decided by (RFC 3339).
    pub now: String,
    /// Segments that failed, with why (they are retried by the next apply).
    pub failed: Vec<String>,
}

/// One action coming up (`retention plan`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlanItem {
    /// The segment id (decimal).
    pub id: String,
    /// What comes up: `upload`, `evict`, `delete`, or `pinned` (an eviction a pin defers).
    pub action: &'static str,
    /// When it is due (RFC 3339, UTC).
    pub at: String,
    /// The officer whose footage it is.
    pub officer: String,
    /// The segment's recording end (RFC 3339, UTC).
    pub end: String,
    /// The segment's retention categories.
    pub categories: Vec<String>,
    /// Legal holds (case ids) on the segment: a held segment is never deleted.
    pub holds: Vec<String>,
    /// The segment's pin in force at the plan's `now`: RFC 3339, or `"indefinitely"`. An
    /// eviction it defers is listed as `pinned` at the time it was due, then as `evict` when
    /// the pin ends (if that is inside the plan's horizon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_until: Option<String>,
}

/// What a progress callback is told.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The step under way: `upload`, `evict`, `delete` or `compact`.
    pub action: &'a str,
    /// The segment (or volume, for compaction) the step is about.
    pub id: u64,
    /// Steps done so far in this run.
    pub done: u64,
    /// Steps the run will take in all.
    pub total: u64,
}

struct Candidate {
    id: u64,
    /// Data dir holding its commit record (and so its chunks).
    dir: Option<u16>,
    end_us: i64,
    flags: u32,
    eff: Effective,
    holds: Vec<String>,
    /// The segment's pin, if it has one (in force while later than the run's `now`).
    pinned_until: Option<i64>,
    categories: Vec<String>,
    officer: String,
}

/// Clock skew tolerated between the caller's "now" and this machine's clock (60 s): an
/// `apply` may decide by a time up to this much later than the real clock. Anything later is
/// refused ([`crate::Error::ClockAhead`]) on a store without a simulated clock.
pub const CLOCK_SKEW_US: i64 = 60_000_000;

fn due(end: i64, after: Option<i64>) -> Option<i64> {
    after.map(|a| end.saturating_add(a))
}

impl Store {
    /// The store's retention policy (policy.toml, written with defaults on first use).
    pub fn policy(&self) -> Result<Policy> {
        self.inner.load_policy()
    }

    fn candidates(&self, policy: &Policy) -> Vec<Candidate> {
        let cat = self.inner.catalog.read();
        let mut cats: HashMap<u64, Vec<String>> = HashMap::new();
        for (name, ids) in &cat.index.labels[LabelKind::Category as usize] {
            for id in ids {
                cats.entry(*id).or_default().push(name.clone());
            }
        }
        let mut out: Vec<Candidate> = cat
            .live()
            .map(|e| {
                let categories = cats.remove(&e.id).unwrap_or_default();
                Candidate {
                    id: e.id,
                    dir: cat.volumes.get(&e.meta_volume).map(|v| v.dir),
                    end_us: e.end_us,
                    flags: e.flags,
                    eff: policy.effective(&categories),
                    holds: cat
                        .state(e.id)
                        .map(|s| s.state.holds.clone())
                        .unwrap_or_default(),
                    pinned_until: cat.state(e.id).and_then(|s| s.state.pinned_until),
                    categories,
                    officer: cat.names.name(e.officer).to_string(),
                }
            })
            .collect();
        out.sort_by_key(|c| (c.end_us, c.id));
        out
    }

    /// What will be uploaded, evicted and deleted between `now` and `now + days`, soonest
    /// first, so a reviewer can hold evidence before it goes.
    pub fn retention_plan(&self, now: i64, days: u32) -> Result<Vec<PlanItem>> {
        let policy = self.policy()?;
        let horizon = now.saturating_add(i64::from(days) * 86_400_000_000);
        let mut out = Vec::new();
        for c in self.candidates(&policy) {
            let pin = c.pinned_until.filter(|&t| t > now);
            let item = |action, at: i64| PlanItem {
                id: c.id.to_string(),
                action,
                at: format_time(at.max(now)),
                officer: c.officer.clone(),
                end: format_time(c.end_us),
                categories: c.categories.clone(),
                holds: c.holds.clone(),
                pinned_until: pin.map(crate::store::show_pin),
            };
            let delete_at = due(c.end_us, c.eff.delete_after);
            if let Some(at) = delete_at.filter(|&t| t <= horizon) {
                out.push((
                    at,
                    item(if c.holds.is_empty() { "delete" } else { "held" }, at),
                ));
                if c.holds.is_empty() {
                    continue;
                }
            }
            if c.eff.upload && c.flags & FLAG_UPLOADED == 0 {
                out.push((now, item("upload", now)));
            }
            let can_evict = c.eff.upload || c.flags & FLAG_UPLOADED != 0;
            if let Some(at) = due(c.end_us, c.eff.evict_after)
                .filter(|&t| t <= horizon && can_evict && c.flags & FLAG_EVICTED == 0)
            {
                match pin.filter(|&p| p > at.max(now)) {
                    // Kept local past its time; evicted by the first run after the pin ends.
                    Some(p) => {
                        out.push((at, item("pinned", at)));
                        if p != PIN_FOREVER && p <= horizon {
                            out.push((p, item("evict", p)));
                        }
                    }
                    None => out.push((at, item("evict", at))),
                }
            }
        }
        out.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(out.into_iter().map(|(_, i)| i).collect())
    }

    /// Uploads, evicts and deletes what the policy says is due at `now`, then evicts early
    /// (oldest first, uploaded only) while a data disk is above the high watermark, and
    /// drops volumes nothing needs any more.
    pub fn retention_apply(
        &self,
        now: i64,
        dry_run: bool,
        actor: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary> {
        if !dry_run {
            self.inner.writable("retention apply")?;
        }
        let clock = self.config().clock_name();
        if !dry_run && !self.config().simulated_clock() {
            let real = crate::util::now_us();
            if now > real.saturating_add(CLOCK_SKEW_US) {
                return Err(crate::Error::ClockAhead {
                    now: format_time(now),
                    real: format_time(real),
                    tolerance_s: (CLOCK_SKEW_US / 1_000_000) as u64,
                });
            }
        }
        let run = RunClock {
            clock,
            now: format_time(now),
            now_us: now,
        };
        let run = Some(&run);
        let policy = self.policy()?;
        let mut s = Summary {
            dry_run,
            clock: clock.to_string(),
            now: format_time(now),
            ..Summary::default()
        };
        if !dry_run {
            // Cloud copies whose deletion a crash or an outage interrupted.
            if let Err(e) = self.finish_cloud_deletes() {
                s.failed.push(format!("finishing cloud deletions: {e}"));
            }
        }
        let list = self.candidates(&policy);
        let total = list.len() as u64;
        let mut evictable: Vec<Evictable> = Vec::new();
        let mut pinned: Vec<(Option<u16>, u64)> = Vec::new();
        for (n, c) in list.iter().enumerate() {
            let report = |action| Progress {
                action,
                id: c.id,
                done: n as u64,
                total,
            };
            if self.inner.uploads.completing(c.id) {
                // An upload's segment before its session is completed: left for a later run.
                continue;
            }
            if due(c.end_us, c.eff.delete_after).is_some_and(|t| now >= t) {
                if !c.holds.is_empty() {
                    s.held += 1;
                } else {
                    progress(report("delete"));
                    if dry_run {
                        s.deleted += 1;
                    } else {
                        match self.delete_in_run(c.id, actor, run) {
                            Ok(freed) => {
                                s.deleted += 1;
                                s.bytes_reclaimed += freed;
                            }
                            Err(e) => s.failed.push(format!("delete {}: {e}", c.id)),
                        }
                    }
                    continue;
                }
            }
            let mut uploaded = c.flags & FLAG_UPLOADED != 0;
            if c.eff.upload && !uploaded {
                progress(report("upload"));
                if dry_run {
                    s.uploaded += 1;
                    uploaded = true;
                } else {
                    match self.upload_in_run(c.id, actor, &mut |_| {}, run) {
                        Ok(_) => {
                            s.uploaded += 1;
                            uploaded = true;
                        }
                        Err(e) => s.failed.push(format!("upload {}: {e}", c.id)),
                    }
                }
            }
            if !uploaded || c.flags & FLAG_EVICTED != 0 {
                continue;
            }
            if c.pinned_until.is_some_and(|t| t > now) {
                // A pin keeps it local, due or not, under pressure or not (pin.rs).
                if due(c.end_us, c.eff.evict_after).is_some_and(|t| now >= t) {
                    s.pinned += 1;
                }
                pinned.push((c.dir, c.id));
                continue;
            }
            if due(c.end_us, c.eff.evict_after).is_some_and(|t| now >= t) {
                progress(report("evict"));
                if dry_run {
                    s.evicted += 1;
                } else {
                    match self.evict_in_run(c.id, actor, run) {
                        Ok(freed) => {
                            s.evicted += 1;
                            s.bytes_reclaimed += freed;
                        }
                        Err(e) => s.failed.push(format!("evict {}: {e}", c.id)),
                    }
                }
            } else {
                evictable.push(Evictable {
                    end_us: c.end_us,
                    id: c.id,
                    dir: c.dir,
                });
            }
        }
        if !dry_run {
            self.relieve_disk_pressure_of(&policy, &mut evictable, &pinned, actor, &mut s, run);
            match self.drop_empty_volumes(actor) {
                Ok(freed) => s.bytes_reclaimed += freed,
                Err(e) => s.failed.push(format!("dropping empty volumes: {e}")),
            }
            // The chain head goes where the station cannot rewrite it (only when the cloud
            // tier was used: a store that never uploads need not reach it).
            if s.uploaded + s.evicted + s.deleted > 0 {
                if let Err(e) = self.publish_audit_head() {
                    s.failed.push(format!("publishing the audit head: {e}"));
                }
            }
            if policy.compact_below_live > 0.0 {
                match self.compact(1.0 - policy.compact_below_live, actor) {
                    Ok(c) => {
                        s.compacted += c.volumes;
                        s.bytes_reclaimed += c.bytes_reclaimed;
                        s.failed
                            .extend(c.failed.into_iter().map(|f| format!("compacting {f}")));
                    }
                    Err(e) => s.failed.push(format!("compacting: {e}")),
                }
            }
        }
        Ok(s)
    }

    /// For each data disk above the watermark, evicts uploaded segments stored on it, oldest
    /// first, until it is below (or nothing more can go).
    pub(crate) fn relieve_disk_pressure_of(
        &self,
        policy: &Policy,
        evictable: &mut [Evictable],
        pinned: &[(Option<u16>, u64)],
        actor: &str,
        s: &mut Summary,
        run: Option<&RunClock>,
    ) {
        evictable.sort_unstable_by_key(|e| (e.end_us, e.id));
        let Ok(stats) = self.stats() else { return };
        for (index, disk) in stats.disks.iter().enumerate() {
            if !disk.available {
                continue;
            }
            let (Some(total), Some(free)) = (disk.total_bytes, disk.free_bytes) else {
                continue;
            };
            let used = total.saturating_sub(free) as f64;
            let limit = policy.high_watermark * total as f64;
            let mut excess = used - limit;
            for e in evictable.iter().filter(|e| e.dir == Some(index as u16)) {
                if excess <= 0.0 {
                    break;
                }
                match self.evict_in_run(e.id, actor, run) {
                    Ok(freed) => {
                        s.evicted += 1;
                        s.bytes_reclaimed += freed;
                        excess -= freed as f64;
                    }
                    Err(err) => s.failed.push(format!("evict {}: {err}", e.id)),
                }
            }
            let kept = pinned.iter().filter(|p| p.0 == Some(index as u16)).count();
            if excess > 0.0 && kept > 0 {
                s.pinned += kept;
                let line = format!(
                    "data dir {index} ({}) is above the high watermark ({:.0}%) and only                      pinned footage is left to evict ({kept} pinned segments): unpin some or                      add disk",
                    disk.path,
                    policy.high_watermark * 100.0
                );
                tracing::warn!("{line}");
                s.pins_fill_disk.push(line);
            }
        }
    }
}

/// An uploaded segment that could be evicted early under disk pressure.
pub(crate) struct Evictable {
    end_us: i64,
    id: u64,
    dir: Option<u16>,
}
