//! Changes to committed segments: categories, tags, cases and legal holds (and, for the tier
//! and retention, uploads, evictions and deletions). Each is a change record in the log, made
//! durable before it is applied and acknowledged, exactly like a commit.
//!
//! Invariants:
//! - changes are serialised (`change_lock`): each computes the segment's new state from its
//!   current state, so two concurrent changes never lose one another;
//! - the record is durable before the catalog shows it; the commit gate is held shared from
//!   append to apply, so a checkpoint never misses it;
//! - the audit entry (action = the op name) is durable before the change is acknowledged, and
//!   is appended under `change_lock`, so the audit log lists changes in the order they were
//!   applied.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::format::change::{ChangeRecord, Op, SegmentState};
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind};
use crate::log::writer::Appended;
use crate::meta::{validate_id, MAX_LABELS};
use crate::store::{Inner, SegmentInfo, Store};

/// A change a user asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Add a retention category (policy.toml's `category.<name>`); retention follows it.
    Categorize(String),
    /// Take a retention category away.
    Uncategorize(String),
    /// Add a free tag.
    Tag(String),
    /// Take a tag away.
    Untag(String),
    /// Attach the segment to a case id.
    AddCase(String),
    /// Detach the segment from a case id.
    RemoveCase(String),
    /// Place a legal hold for a case: the segment cannot be deleted until it is released.
    Hold(String),
    /// Release a case's legal hold (the segment's other holds stay).
    Release(String),
}

impl Change {
    fn parts(&self) -> (Op, &str, &'static str) {
        match self {
            Change::Categorize(s) => (Op::AddCategory, s, "category"),
            Change::Uncategorize(s) => (Op::RemoveCategory, s, "category"),
            Change::Tag(s) => (Op::AddTag, s, "tag"),
            Change::Untag(s) => (Op::RemoveTag, s, "tag"),
            Change::AddCase(s) => (Op::AddCase, s, "case"),
            Change::RemoveCase(s) => (Op::RemoveCase, s, "case"),
            Change::Hold(s) => (Op::Hold, s, "case"),
            Change::Release(s) => (Op::Release, s, "case"),
        }
    }
}

impl Store {
    /// Applies a change to a segment durably and returns its new `info`. A change that would
    /// not change anything (adding a category it has) succeeds without writing a record;
    /// releasing a hold that is not there is an error.
    pub fn change(&self, id: u64, change: &Change, actor: &str) -> Result<SegmentInfo> {
        self.inner.writable("a change of labels or holds")?;
        let (op, arg, what) = change.parts();
        validate_id(what, arg).map_err(Error::Invalid)?;
        crate::store::audit::check_actor(actor)?;
        {
            let _serial = self.inner.change_lock.lock();
            let mut state = self.inner.current_state(id)?;
            let before = state.list_lens();
            let changed = state.apply(op, arg);
            if op == Op::Release && !changed {
                return Err(Error::Invalid(format!(
                    "segment {id} is not held for case {arg:?}"
                )));
            }
            // The ingest limit holds for changes too (a list already past it, from an older
            // build, may shrink but not grow).
            let grew_past_limit = state
                .list_lens()
                .iter()
                .zip(before)
                .any(|(&after, before)| after > before && after > MAX_LABELS);
            if changed && grew_past_limit {
                return Err(Error::Invalid(format!(
                    "segment {id} already has {MAX_LABELS} {what} values, the limit; remove one \
                     first"
                )));
            }
            // A removal (release, untag, uncategorize, uncase) is in the audit log BEFORE its
            // record, as a deletion is: a crash between the two then leaves an entry for a
            // removal that may not have happened (the label stays: the safe side, and the
            // entry says the caller asked), never a durable removal the log lacks, which
            // `verify` (crosscheck.rs) could not tell from a lost change once a later audited
            // change (an eviction, say) raised the segment's audited lsn past it.
            let removal = matches!(
                op,
                Op::Release | Op::RemoveTag | Op::RemoveCategory | Op::RemoveCase
            );
            let entry = |lsn: Option<u64>| {
                let mut details = serde_json::Map::new();
                details.insert(what.into(), arg.into());
                details.insert("changed".into(), changed.into());
                // The change record's log sequence number: `verify` (crosscheck.rs) tells a
                // change the audit log has not caught up with yet from a lost one by it.
                if let Some(lsn) = lsn {
                    details.insert("lsn".into(), lsn.into());
                }
                self.inner.audit.record(
                    actor,
                    &crate::audit::Action::from(op),
                    Some(id),
                    &serde_json::Value::Object(details).to_string(),
                )
            };
            if removal {
                entry(None)?;
                crate::fail::point("change.removal_audited");
            }
            let mut lsn = None;
            if changed {
                let uploaded = state.flags & crate::format::change::FLAG_UPLOADED != 0;
                lsn = Some(self.inner.append_change(
                    id,
                    op,
                    arg,
                    state.clone(),
                    Vec::new(),
                    actor,
                )?);
                if uploaded {
                    self.inner.tier()?.update_state(id, &state).map_err(|e| {
                        Error::Cloud(format!(
                            "the change is recorded, but the cloud copy of segment {id} still \
                             shows the old labels (retry the change): {e}"
                        ))
                    })?;
                }
            }
            if !removal {
                entry(lsn)?;
            }
        }
        if op == Op::Hold {
            // Prefetch: footage under a legal hold for a case is footage someone is about to
            // need; the service restores the case's evicted segments in the background.
            self.prefetch_case(arg, actor, "hold");
        }
        self.inner.maybe_checkpoint();
        self.info(id)
    }

    /// Adds a category (`footage categorize`).
    pub fn categorize(&self, id: u64, name: &str, actor: &str) -> Result<SegmentInfo> {
        self.change(id, &Change::Categorize(name.into()), actor)
    }

    /// Places a legal hold for a case (`footage hold`).
    pub fn hold(&self, id: u64, case: &str, actor: &str) -> Result<SegmentInfo> {
        self.change(id, &Change::Hold(case.into()), actor)
    }

    /// Releases a case's legal hold (`footage release`).
    pub fn release(&self, id: u64, case: &str, actor: &str) -> Result<SegmentInfo> {
        self.change(id, &Change::Release(case.into()), actor)
    }
}

impl Inner {
    /// A segment's mutable state now.
    pub(crate) fn current_state(&self, id: u64) -> Result<SegmentState> {
        self.state_with(id, None)
    }

    /// A segment's mutable state now, using its commit record if the caller has it loaded.
    pub(crate) fn state_with(
        &self,
        id: u64,
        loaded: Option<&CommitRecord>,
    ) -> Result<SegmentState> {
        let (flags, state) = {
            let cat = self.catalog.read();
            let e = cat.get(id).ok_or_else(|| Error::NotFound(id.to_string()))?;
            (e.flags, cat.state(id).map(|s| s.state.clone()))
        };
        if let Some(s) = state {
            return Ok(s);
        }
        let labels = |r: &CommitRecord| {
            (
                r.meta.categories.clone(),
                r.meta.tags.clone(),
                r.meta.cases.clone(),
            )
        };
        let (categories, tags, cases) = match loaded {
            Some(r) => labels(r),
            None => labels(&self.load_commit(id, false)?),
        };
        Ok(SegmentState {
            categories,
            tags,
            cases,
            holds: Vec::new(),
            flags,
            pinned_until: None,
        })
    }

    /// Appends a change record, makes it durable, then applies it to the catalog; returns the
    /// record's log sequence number (audit entries carry it, see crosscheck.rs). The caller
    /// holds `change_lock`.
    pub(crate) fn append_change(
        &self,
        id: u64,
        op: Op,
        arg: &str,
        state: SegmentState,
        freed: Vec<(u32, u64)>,
        actor: &str,
    ) -> Result<u64> {
        self.append_change_as(id, op, arg, state, freed, actor, false)
    }

    /// [`Inner::append_change`], or with `v1` a version-1 record (the full state, as builds
    /// before delta records wrote), for tests that old records stay readable.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append_change_as(
        &self,
        id: u64,
        op: Op,
        arg: &str,
        state: SegmentState,
        freed: Vec<(u32, u64)>,
        actor: &str,
        v1: bool,
    ) -> Result<u64> {
        // The segment's last change record, if the catalog has one: (lsn, volume, its dir).
        let last = {
            let cat = self.catalog.read();
            cat.state(id).map(|s| {
                let dir = cat.volumes.get(&s.volume).map(|v| v.dir);
                (s.lsn, s.volume, dir)
            })
        };
        // The data dir of that record, while it is healthy, so a delta can follow it.
        let dir = match last.and_then(|l| l.2) {
            Some(d)
                if self
                    .dirs
                    .get(usize::from(d))
                    .is_some_and(|x| x.failed.lock().is_none()) =>
            {
                d
            }
            _ => self.pick_dir()?,
        };
        let day = Inner::day_of(self.now_us());
        let _gate = self.gate.read();
        let mut rec = ChangeRecord {
            segment_id: id,
            lsn: self.next_lsn.fetch_add(1, Ordering::SeqCst),
            time_us: self.now_us(),
            actor: actor.to_string(),
            op,
            arg: arg.to_string(),
            state,
            base_lsn: None,
            freed,
        };
        let (w, pos, payload) = loop {
            let w = self.writer_for(dir, day)?;
            // A label change costs only itself (a delta) when it lands in the volume that
            // holds the segment's last change: then every record since the last full one
            // lives in one volume, and restating the volume's segments before it is dropped
            // keeps the log alone enough to rebuild every state.
            rec.base_lsn = match last {
                Some((lsn, volume, _)) if op.is_label() && volume == w.volume.id && !v1 => {
                    Some(lsn)
                }
                _ => None,
            };
            let payload = if v1 {
                rec.encode_v1()
            } else {
                rec.encode()
                    .map_err(|e| Error::Invalid(format!("segment {id}: {e}")))?
            };
            match w.append(Kind::Change, id, 0, &[&payload])? {
                Appended::At(pos) => break (w, pos, payload),
                Appended::Full => self.rotate(dir, day, &w)?,
            }
        };
        w.sync_to(record_end(pos, payload.len() as u32))?;
        // In memory the full state is known: apply it as such (the same state a replay of
        // the delta on its base gives, as the caller's `change_lock` keeps the base current).
        rec.base_lsn = None;
        self.catalog.write().apply_change(&rec, w.volume.id);
        Ok(rec.lsn)
    }
}

/// Adds `tag` to segment `id` with a version-1 change record (the full state), as builds
/// before delta records wrote: for tests that such records stay readable.
#[cfg(any(test, feature = "internals"))]
pub fn append_v1_tag(store: &Store, id: u64, tag: &str) -> Result<()> {
    let _serial = store.inner.change_lock.lock();
    let mut state = store.inner.current_state(id)?;
    state.apply(Op::AddTag, tag);
    store
        .inner
        .append_change_as(id, Op::AddTag, tag, state, Vec::new(), "test", true)?;
    Ok(())
}
