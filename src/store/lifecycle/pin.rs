//! Pins: keeping footage local (`footage pin ID|--case C [--until TIME]`, `footage unpin`).
//!
//! A pin is part of a segment's state (`SegmentState::pinned_until`), set and taken away by
//! `Pin` and `Unpin` change records (full records, version 3 while a pin is on: FORMAT.md
//! §7), durable before they are acknowledged and audited (`pin`, `unpin`, with the record's
//! `lsn`) like every change.
//!
//! What a pin means (DESIGN.md §27): retention never evicts a pinned segment while the pin
//! lasts (neither by policy nor under disk pressure); pinning an evicted segment queues it
//! for restore (restore_queue.rs). A pin is about *where* footage is, not how long it is
//! kept: it never blocks deletion past `delete_after` (a legal hold does that), so a pin can
//! never keep footage the force's retention schedule says must go. A case pin pins the
//! segments linked to the case *when it is placed*; footage linked to the case later is not
//! covered (pin the case again): a pin names segments, as a hold does.
//!
//! Invariants: changes are serialised by `change_lock` like every change; a pin's end is
//! after the time it is placed; an expired pin is simply not in force (no record is needed
//! to end it).

use crate::error::{Error, Result};
use crate::format::change::{Op, FLAG_EVICTED, PIN_FOREVER};
use crate::input::time::format_time;
use crate::store::{SegmentInfo, Store};

/// Reason recorded in the restore queue for footage queued by a pin.
pub(crate) fn pin_reason(case: Option<&str>) -> String {
    match case {
        Some(c) => format!("prefetch:pin:{c}"),
        None => "pin".into(),
    }
}

impl Store {
    /// Pins segment `id` (keeps it local) until `until` (µs), or with no end; an evicted
    /// segment is queued for restore. Returns its `info`.
    pub fn pin(&self, id: u64, until: Option<i64>, actor: &str) -> Result<SegmentInfo> {
        self.pin_for(id, until, actor, None)
    }

    fn pin_for(
        &self,
        id: u64,
        until: Option<i64>,
        actor: &str,
        case: Option<&str>,
    ) -> Result<SegmentInfo> {
        self.inner.writable("a pin")?;
        crate::store::audit::check_actor(actor)?;
        let now = self.inner.now_us();
        if let Some(t) = until {
            if t <= now {
                return Err(Error::Invalid(format!(
                    "the end of the pin ({}) is not in the future (now {})",
                    format_time(t),
                    format_time(now)
                )));
            }
        }
        let until = until.unwrap_or(PIN_FOREVER);
        let evicted = {
            let _serial = self.inner.change_lock.lock();
            let mut state = self.inner.current_state(id)?;
            let evicted = state.flags & FLAG_EVICTED != 0;
            if state.pinned_until != Some(until) {
                state.pinned_until = Some(until);
                let arg = if until == PIN_FOREVER {
                    String::new()
                } else {
                    format_time(until)
                };
                let lsn = self
                    .inner
                    .append_change(id, Op::Pin, &arg, state, Vec::new(), actor)?;
                crate::fail::point("pin.after_record");
                self.audit(
                    actor,
                    crate::audit::Action::Pin,
                    Some(id),
                    serde_json::json!({
                        "until": if arg.is_empty() { serde_json::Value::Null } else { arg.into() },
                        "case": case,
                        "lsn": lsn,
                    }),
                )?;
            }
            evicted
        };
        if evicted {
            // Prefetch: a pinned segment belongs on the station.
            self.queue_restore(&[id], actor, &pin_reason(case))?;
        }
        self.inner.maybe_checkpoint();
        self.info(id)
    }

    /// Takes segment `id`'s pin away; an error if it has none in force.
    pub fn unpin(&self, id: u64, actor: &str) -> Result<SegmentInfo> {
        self.inner.writable("an unpin")?;
        crate::store::audit::check_actor(actor)?;
        {
            let _serial = self.inner.change_lock.lock();
            let mut state = self.inner.current_state(id)?;
            if state.pinned_until.is_none() {
                return Err(Error::Invalid(format!("segment {id} is not pinned")));
            }
            state.pinned_until = None;
            let lsn = self
                .inner
                .append_change(id, Op::Unpin, "", state, Vec::new(), actor)?;
            self.audit(
                actor,
                crate::audit::Action::Unpin,
                Some(id),
                serde_json::json!({ "lsn": lsn }),
            )?;
        }
        self.inner.maybe_checkpoint();
        self.info(id)
    }

    /// Pins every segment linked to `case` now (see the module doc); returns their `info`.
    pub fn pin_case(
        &self,
        case: &str,
        until: Option<i64>,
        actor: &str,
    ) -> Result<Vec<SegmentInfo>> {
        let ids = self.case_segments(case);
        if ids.is_empty() {
            return Err(Error::NotFound(format!("case {case:?}")));
        }
        ids.into_iter()
            .map(|id| self.pin_for(id, until, actor, Some(case)))
            .collect()
    }

    /// Takes the pins of every pinned segment linked to `case` away; returns their `info`.
    pub fn unpin_case(&self, case: &str, actor: &str) -> Result<Vec<SegmentInfo>> {
        let ids = self.case_segments(case);
        if ids.is_empty() {
            return Err(Error::NotFound(format!("case {case:?}")));
        }
        let mut out = Vec::new();
        for id in ids {
            if self.inner.current_state(id)?.pinned_until.is_some() {
                out.push(self.unpin(id, actor)?);
            }
        }
        Ok(out)
    }

    /// Pinned segments (pin in force at `now`): (id, pinned_until, bytes, local).
    pub fn pinned(&self, now: i64) -> Vec<(u64, i64, u64, bool)> {
        let cat = self.inner.catalog.read();
        let mut out: Vec<(u64, i64, u64, bool)> = cat
            .states
            .iter()
            .filter_map(|(id, s)| {
                let until = s.state.pinned_until.filter(|t| *t > now)?;
                let e = cat.get(*id)?;
                Some((*id, until, e.bytes, e.flags & FLAG_EVICTED == 0))
            })
            .collect();
        out.sort_unstable();
        out
    }
}

/// A pin's end as `info` shows it: RFC 3339, or `"indefinitely"`.
pub(crate) fn show_pin(until: i64) -> String {
    crate::types::PinnedUntil::from_micros(until).to_string()
}
