//! The audit log against the catalog: every acknowledged change must still be in the store.
//!
//! Every ingest, label, case and hold change is durable in the audit log before it is
//! acknowledged (`change.rs`, `ingest.rs`), and written only after its record in the volumes
//! is durable. So an acknowledged segment or change that the catalog no longer has was lost
//! after it was acknowledged: overwritten by a second writer (the lost legal hold of issue 10,
//! item 3), a restored older copy of the volumes, or a bug. `verify` reports each as a
//! finding (exit 1) rather than letting it pass unnoticed.
//!
//! Invariants: the check reads the whole audit log and the catalog, never changes either; a
//! segment deleted by retention (a later `delete` entry) has no expectations left; only the
//! direction "the audit log says it was acknowledged, the store lacks it" is a finding.
//! A crash between a change record becoming durable and its audit entry being written leaves
//! the audit log behind the catalog (that change was never acknowledged): label entries carry
//! the change record's log sequence number (`lsn`), and a segment whose newest change record
//! is newer than every `lsn` the audit log has for it is not compared label by label. Likewise
//! a segment the catalog lists as deleted (a durable `Deleted` record) whose `delete` entry a
//! crash kept from the log is not a lost segment. Entries written before labels carried an
//! `lsn` (older builds) give no such bound, so the labels of a segment whose entries carry none
//! are not compared. Upload and evict entries carry their record's `lsn` too. A removal
//! (release, untag, uncategorize, uncase) is written to the log BEFORE its record, as a
//! deletion is, so its entry leaves no expectation for that label either way: otherwise a
//! durable removal whose entry a crash kept out, followed by an audited eviction of the same
//! segment, would raise the audited `lsn` past it and read as a lost hold (found by the kill
//! campaign).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::store::{hex, Store};

/// Which list of a segment's state an audited change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum List {
    Category,
    Tag,
    Case,
    Hold,
}

/// What the audit log says the store must hold.
#[derive(Default)]
struct Expected {
    /// Segment → (index of its `ingest` entry, SHA-256 recorded then).
    segments: BTreeMap<u64, (u64, Option<String>)>,
    /// (segment, list, label) → (present, index of the entry, action).
    labels: BTreeMap<(u64, List, String), (bool, u64, String)>,
    /// Segment → the newest change-record `lsn` its audited label changes name.
    lsns: BTreeMap<u64, u64>,
}

impl Expected {
    fn set(&mut self, seg: u64, list: List, label: &str, present: bool, index: u64, action: &str) {
        self.labels.insert(
            (seg, list, label.to_string()),
            (present, index, action.to_string()),
        );
    }
}

impl Store {
    /// Acknowledged segments and changes (in the audit log) that the store no longer has,
    /// one line each ("segment N: ...").
    pub(super) fn lost_changes(&self) -> Result<Vec<String>> {
        let mut exp = Expected::default();
        for e in self.audit_entries(None, None)? {
            let Some(seg) = e.segment else { continue };
            let label = |key: &str| {
                e.details
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            if let Some(lsn) = e.details.get("lsn").and_then(|v| v.as_u64()) {
                let max = exp.lsns.entry(seg).or_insert(0);
                *max = (*max).max(lsn);
            }
            match e.action.as_str() {
                "ingest" => {
                    let sha = label("sha256");
                    exp.segments.entry(seg).or_insert((e.index, sha));
                }
                "delete" => {
                    exp.segments.remove(&seg);
                    exp.labels.retain(|k, _| k.0 != seg);
                }
                action => {
                    let (list, key, present) = match action {
                        "categorize" => (List::Category, "category", true),
                        "uncategorize" => (List::Category, "category", false),
                        "tag" => (List::Tag, "tag", true),
                        "untag" => (List::Tag, "tag", false),
                        "case" => (List::Case, "case", true),
                        "uncase" => (List::Case, "case", false),
                        "hold" => (List::Hold, "case", true),
                        "release" => (List::Hold, "case", false),
                        _ => continue,
                    };
                    let Some(name) = label(key) else { continue };
                    if !present {
                        // A removal is audited before its record (change.rs): it may or may
                        // not have happened, and either is safe. No expectation is left.
                        exp.labels.remove(&(seg, list, name.clone()));
                        continue;
                    }
                    if action == "hold" {
                        // A hold puts its case on the segment too.
                        exp.set(seg, List::Case, &name, true, e.index, action);
                    }
                    exp.set(seg, list, &name, present, e.index, action);
                }
            }
        }
        let mut out = Vec::new();
        let missing: Vec<u64> = {
            let cat = self.inner.catalog.read();
            exp.segments
                .keys()
                .copied()
                .filter(|id| cat.get(*id).is_none() && !cat.is_deleted(*id))
                .collect()
        };
        for (id, (index, sha)) in &exp.segments {
            if missing.contains(id) {
                out.push(format!(
                    "segment {id}: acknowledged at ingest (audit entry {index}) but the store \
                     no longer has it, and no deletion is recorded"
                ));
                continue;
            }
            // A commit record that cannot be read is reported by the segment checks.
            if let (Some(sha), Ok(rec)) = (sha, self.inner.load_commit(*id, false)) {
                let held = hex(&rec.sha256);
                if !held.eq_ignore_ascii_case(sha) {
                    out.push(format!(
                        "segment {id}: audit entry {index} recorded SHA-256 {sha} at ingest, \
                         the store holds another segment under this id (SHA-256 {held})"
                    ));
                }
            }
        }
        let mut states = BTreeMap::new();
        for ((seg, list, name), (present, index, action)) in &exp.labels {
            if missing.contains(seg) {
                continue;
            }
            // The catalog's newest change record for the segment is newer than the audit log
            // knows of: a crash came between that record and its entry (never acknowledged).
            let newest = self.inner.catalog.read().state(*seg).map(|s| s.lsn);
            match (newest, exp.lsns.get(seg)) {
                (Some(cat), Some(audited)) if cat > *audited => continue,
                (Some(_), None) => continue,
                _ => {}
            }
            let state = match states.entry(*seg) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => match self.inner.current_state(*seg) {
                    Ok(s) => v.insert(s),
                    Err(_) => continue,
                },
            };
            let held = match list {
                List::Category => &state.categories,
                List::Tag => &state.tags,
                List::Case => &state.cases,
                List::Hold => &state.holds,
            };
            let has = held.iter().any(|x| x == name);
            if has != *present {
                let what = match list {
                    List::Category => "category",
                    List::Tag => "tag",
                    List::Case => "case",
                    List::Hold => "legal hold for case",
                };
                out.push(format!(
                    "segment {seg}: `{action}` of {what} {name:?} was acknowledged (audit \
                     entry {index}) but the store {} it: the change was lost",
                    if has { "still has" } else { "does not have" }
                ));
            }
        }
        Ok(out)
    }
}
