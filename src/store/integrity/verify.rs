//! `verify`: re-reads every chunk of every local segment (CRC) and recomputes each segment's
//! SHA-256, the store's fsck.
//!
//! Invariants: verify never changes footage except, with `repair`, by rewriting damaged
//! chunks with their original bytes from a verified cloud copy (`repair.rs`); it records
//! what it finds (audit `corruption`, the findings list in `<root>/scrub/state`) and,
//! through an actor handle, one `verify` entry. Local copies are checked locally only (never
//! through the cloud fallback of reads, which would hide local damage); evicted segments are
//! checked through their cloud copy. Punched space (zeros where a deleted or evicted
//! segment's records were) is not damage, even at the end of an active volume. A full verify
//! also checks the audit log against the catalog (`crosscheck.rs`): an acknowledged change or
//! segment the store no longer has is a finding.

use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::check::Checked;
use crate::error::{Error, Result};
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::scrub::FindingKind;
use crate::store::{hex, LostSegment, RepairOutcome, Store};
use crate::tier::{error_problem, CloudProblem};

/// A segment that failed its check, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CorruptSegment {
    /// The segment id (decimal).
    pub id: String,
    /// What failed (the error's message).
    pub error: String,
}

/// What [`Store::verify`] found (and repaired).
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    /// Segments checked.
    pub checked: usize,
    /// Video bytes read and checked.
    pub bytes: u64,
    /// Ids of segments that failed (and were not repaired).
    pub corrupt: Vec<String>,
    /// Why each failed.
    pub errors: Vec<CorruptSegment>,
    /// Segments whose local copy cannot be reached (disk failed, volume missing); those
    /// with `cloud_copy` are still read from the cloud.
    pub lost: Vec<LostSegment>,
    /// Segments repaired from their cloud copy by this run (`--repair`).
    pub repaired: Vec<String>,
    /// Cloud copies checked (`--cloud`) and what was wrong with them.
    pub cloud_checked: usize,
    /// What was wrong with each cloud copy that failed its check.
    pub cloud_problems: Vec<CloudProblem>,
    /// The store's list of known corrupt segments after this run, and the scrub's place.
    pub scrub: ScrubSummary,
    /// Damaged records found by re-scanning every volume's record headers and metadata
    /// records (full verify only): damage that no segment read touches, such as a change
    /// record or the seal of a sealed volume ("volume N offsets a..b: why").
    pub volume_damage: Vec<String>,
    /// Acknowledged segments and changes that the audit log records but the store no longer
    /// has (full verify only; `crosscheck.rs`): "segment N: ...".
    pub lost_changes: Vec<String>,
}

impl VerifyReport {
    /// Whether anything needs an operator: corruption, lost local copies, bad cloud copies.
    pub fn has_findings(&self) -> bool {
        !self.corrupt.is_empty()
            || !self.lost.is_empty()
            || !self.cloud_problems.is_empty()
            || !self.volume_damage.is_empty()
            || !self.lost_changes.is_empty()
    }

    /// Whether this run found nothing at all: no corrupt or repaired segment, no lost local
    /// copy, no bad cloud copy, no damaged volume record, and no known corrupt segment left
    /// in the store's findings list. Tests assert this rather than one field.
    pub fn is_clean(&self) -> bool {
        self.problems().is_empty()
    }

    /// Every finding of the report, one line each (empty when [`VerifyReport::is_clean`]).
    pub fn problems(&self) -> Vec<String> {
        // Destructured in full so that a new field cannot be added without deciding here
        // whether it is a finding.
        let VerifyReport {
            checked: _,
            bytes: _,
            corrupt,
            errors,
            lost,
            repaired,
            cloud_checked: _,
            cloud_problems,
            scrub,
            volume_damage,
            lost_changes,
        } = self;
        let mut out = Vec::new();
        out.extend(corrupt.iter().map(|id| format!("corrupt: segment {id}")));
        out.extend(
            errors
                .iter()
                .map(|e| format!("error: segment {}: {}", e.id, e.error)),
        );
        out.extend(
            lost.iter()
                .map(|l| format!("lost: segment {} (volume {}): {}", l.id, l.volume, l.reason)),
        );
        out.extend(repaired.iter().map(|id| format!("repaired: segment {id}")));
        out.extend(
            cloud_problems
                .iter()
                .map(|p| format!("cloud {}: segment {}: {}", p.kind, p.id, p.detail)),
        );
        out.extend(volume_damage.iter().map(|d| format!("volume damage: {d}")));
        out.extend(lost_changes.iter().map(|c| format!("lost change: {c}")));
        if scrub.corrupt_segments > 0 || !scrub.findings.is_empty() {
            out.push(format!(
                "known corrupt segments: {} ({})",
                scrub.corrupt_segments,
                scrub
                    .findings
                    .iter()
                    .map(|f| format!("{} {}", f.id, f.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }
}

/// What `verify` does besides checking local copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Repair damaged chunks of segments with a verified cloud copy.
    pub repair: bool,
    /// Also check every uploaded segment's cloud copy (meta.json, parts, CRCs, SHA-256).
    pub cloud: bool,
}

/// A known corrupt segment, as `stats` and `verify` show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FindingInfo {
    /// The segment id (decimal).
    pub id: String,
    /// When the damage was found (RFC 3339, UTC).
    pub found: String,
    /// `corrupt`, or `repair_failed`.
    pub state: &'static str,
    /// Whether the segment has a verified cloud copy to repair from.
    pub cloud_copy: bool,
    /// What is damaged, in words.
    pub detail: String,
}

/// The scrub's place and the known corrupt segments.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScrubSummary {
    /// Background scrub passes completed since the store was created.
    pub pass: u64,
    /// The highest segment id the pass in progress has checked.
    pub cursor: u64,
    /// When the last complete pass ended (RFC 3339, UTC).
    pub last_pass_done: Option<String>,
    /// Segments repaired by the scrub since the store was created.
    pub repaired_total: u64,
    /// Known corrupt segments now.
    pub corrupt_segments: usize,
    /// At most 1000 (`SUMMARY_LIST`) of them, oldest first.
    pub findings: Vec<FindingInfo>,
    /// Why the state file was not used at open, if it was not.
    pub note: Option<String>,
}

/// Most findings a summary lists (the count is always exact).
pub const SUMMARY_LIST: usize = 1000;

impl Store {
    /// The scrub's place and the known corrupt segments.
    pub fn scrub_summary(&self) -> ScrubSummary {
        let st = self.inner.scrub.state.lock();
        ScrubSummary {
            pass: st.pass,
            cursor: st.cursor,
            last_pass_done: (st.last_pass_done_us != 0)
                .then(|| crate::input::time::format_time(st.last_pass_done_us)),
            repaired_total: st.repaired_total,
            corrupt_segments: st.findings.len(),
            findings: st
                .findings
                .iter()
                .take(SUMMARY_LIST)
                .map(|f| FindingInfo {
                    id: f.segment.to_string(),
                    found: crate::input::time::format_time(f.found_us),
                    state: match f.kind {
                        FindingKind::Corrupt => "corrupt",
                        FindingKind::RepairFailed => "repair_failed",
                    },
                    cloud_copy: f.cloud_copy,
                    detail: f.detail.clone(),
                })
                .collect(),
            note: self.inner.scrub.note.clone(),
        }
    }
}

impl Store {
    /// Verifies one segment: every chunk's CRC and the whole segment's SHA-256.
    pub fn verify_segment(&self, id: u64) -> Result<()> {
        let expected = self.inner.load_commit(id, false)?.sha256;
        // A cached block is no copy: an evicted segment is verified against the cloud itself.
        let mut r = self.reader(id)?.bypass_cache();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<Error>() {
                    Ok(err) => *err,
                    Err(other) => Error::Invalid(other.to_string()),
                },
                None => Error::Invalid("read failed".into()),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        let got: [u8; 32] = hasher.finalize().into();
        if got != expected {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: format!(
                    "SHA-256 is {} but {} was recorded at ingest",
                    crate::store::hex(&got),
                    crate::store::hex(&expected)
                ),
            });
        }
        Ok(())
    }

    /// Verifies the given segments (all when `ids` is None); `progress` gets bytes checked.
    pub fn verify(&self, ids: Option<Vec<u64>>, progress: impl FnMut(u64)) -> Result<VerifyReport> {
        self.verify_with(ids, VerifyOptions::default(), progress)
    }

    /// Verifies the given segments (all when `ids` is None): the local copy of each (every
    /// chunk's CRC, the SHA-256), the cloud copy of evicted ones, and with `opts.cloud` the
    /// cloud copy of every uploaded one. Corruption is recorded (audit `corruption`, the
    /// findings list); with `opts.repair` damaged chunks with a verified cloud copy are
    /// rewritten from it. `progress` gets bytes checked.
    pub fn verify_with(
        &self,
        ids: Option<Vec<u64>>,
        opts: VerifyOptions,
        mut progress: impl FnMut(u64),
    ) -> Result<VerifyReport> {
        if opts.repair {
            self.inner.writable("a verify with repair")?;
        }
        let all = ids.is_none();
        let ids = match ids {
            Some(ids) => ids,
            None => self.segment_ids(),
        };
        let mut report = VerifyReport::default();
        let lost_all: Vec<LostSegment> = self.inner.lost_segments();
        for &id in &ids {
            let entry = self
                .inner
                .catalog
                .read()
                .get(id)
                .map(|e| (e.bytes, e.flags));
            let Some((bytes, flags)) = entry else {
                return Err(Error::NotFound(id.to_string()));
            };
            report.checked += 1;
            let fail = |report: &mut VerifyReport, error: String| {
                report.corrupt.push(id.to_string());
                report.errors.push(CorruptSegment {
                    id: id.to_string(),
                    error,
                });
            };
            if flags & FLAG_EVICTED != 0 {
                // Only the cloud holds it: read it through, verified.
                match self.verify_segment(id) {
                    Ok(()) => report.bytes += bytes,
                    Err(e) => fail(&mut report, e.to_string()),
                }
                progress(bytes);
                continue;
            }
            let checked = self.inner.check_local(id, &mut |n| {
                progress(n);
                true
            });
            self.record_check(id, &checked)?;
            match &checked {
                Checked::Whole | Checked::NoLocalCopy | Checked::Interrupted => {
                    report.bytes += bytes
                }
                Checked::Lost(reason) => {
                    let known = lost_all.iter().find(|l| l.id == id.to_string()).cloned();
                    report.lost.push(known.unwrap_or_else(|| {
                        LostSegment {
                            id: id.to_string(),
                            volume: self
                                .inner
                                .catalog
                                .read()
                                .get(id)
                                .map_or(0, |e| e.meta_volume),
                            dir: None,
                            reason: reason.clone(),
                            cloud_copy: flags & FLAG_UPLOADED != 0,
                        }
                    }));
                }
                Checked::Corrupt { detail, .. } => {
                    let detail = format!("segment {id} is corrupt: {detail}");
                    if opts.repair {
                        match self.repair_checked(id, checked.clone())? {
                            RepairOutcome::Repaired { .. } => {
                                report.repaired.push(id.to_string());
                                report.bytes += bytes;
                            }
                            RepairOutcome::NotRepairable { reason } => {
                                fail(&mut report, format!("{detail}; not repaired: {reason}"))
                            }
                            _ => fail(&mut report, detail),
                        }
                    } else {
                        fail(&mut report, detail);
                    }
                }
            }
        }
        if opts.cloud {
            self.verify_cloud(&ids, &mut report, &mut progress);
        }
        if all {
            report.volume_damage = self.scan_volumes();
            report.lost_changes = self.lost_changes()?;
        }
        let details = serde_json::json!({
            "checked": report.checked,
            "corrupt": report.corrupt,
            "lost": report.lost.len(),
            "repaired": report.repaired,
            "cloud_problems": report.cloud_problems.len(),
            "volume_damage": report.volume_damage.len(),
            "lost_changes": report.lost_changes.len(),
        });
        self.record_access(crate::audit::Action::Verify, None, details)?;
        report.scrub = self.scrub_summary();
        Ok(report)
    }

    /// Checks the cloud copy of every uploaded segment among `ids`.
    fn verify_cloud(&self, ids: &[u64], report: &mut VerifyReport, progress: &mut dyn FnMut(u64)) {
        let uploaded: Vec<(u64, u64)> = {
            let cat = self.inner.catalog.read();
            ids.iter()
                .filter_map(|&id| cat.get(id).map(|e| (id, e.flags, e.bytes)))
                .filter(|(_, f, _)| f & FLAG_UPLOADED != 0)
                .map(|(id, _, b)| (id, b))
                .collect()
        };
        if uploaded.is_empty() {
            return;
        }
        let tier = match self.inner.tier() {
            Ok(t) => t,
            Err(e) => {
                for (id, _) in uploaded {
                    report.cloud_problems.push(error_problem(id, &e));
                }
                return;
            }
        };
        for (id, bytes) in uploaded {
            report.cloud_checked += 1;
            // The SHA-256 recorded at ingest; if the commit record is out of reach, the copy
            // is checked against its own meta.json.
            let expected = self
                .inner
                .load_commit(id, false)
                .ok()
                .map(|r| hex(&r.sha256));
            let problems = match expected {
                Some(sha) => tier.check(id, &sha, bytes, progress),
                None => match tier.fresh_meta(id) {
                    Ok(m) => tier.check(id, &m.sha256.clone(), bytes, progress),
                    Err(e) => vec![error_problem(id, &e)],
                },
            };
            report.cloud_problems.extend(problems);
        }
    }

    /// Scans the records of every open volume (headers, and commit, change and seal
    /// payloads; not chunk payloads, which segment verification reads). A sealed volume must
    /// scan cleanly to its seal record; an active one must have no damage before its end and
    /// must reach the `replay_from` a checkpoint recorded for it.
    fn scan_volumes(&self) -> Vec<String> {
        let mut vols: Vec<_> = self.inner.volumes.read().values().cloned().collect();
        vols.sort_by_key(|v| v.id);
        // (sealed, replay_from) of each volume as the catalog knows it.
        let states: std::collections::HashMap<u32, (bool, u64)> = {
            let cat = self.inner.catalog.read();
            cat.volumes
                .values()
                .map(|s| (s.id, (s.sealed, s.replay_from)))
                .collect()
        };
        let mut out = Vec::new();
        for v in vols {
            let o = crate::log::scan::scan(&v, 0);
            for d in &o.damage {
                out.push(format!(
                    "volume {} offsets {}..{}: {}",
                    v.id, d.from, d.to, d.what
                ));
            }
            let (sealed, replay_from) = states.get(&v.id).copied().unwrap_or((false, 0));
            if sealed && (!o.sealed || o.end < o.file_len) {
                out.push(format!(
                    "volume {}: sealed, but its records end at offset {} of {} without a \
                     valid seal record after them",
                    v.id, o.end, o.file_len
                ));
            } else if o.end < replay_from && !all_zero(&v, o.end, replay_from) {
                // Everything below `replay_from` was durable when a checkpoint recorded it: a
                // scan that stops earlier found damage in the last records of an active volume
                // (which would otherwise look like a torn tail). Unless every byte after the
                // last valid record is zero: the records there were punched out (a deleted or
                // evicted segment whose change record went to another volume), which frees
                // space and is not damage. A damaged record is never all zeros here (its
                // header names its segment), and garbage is not zero.
                out.push(format!(
                    "volume {}: records end at offset {} but a checkpoint recorded valid \
                     records up to {}: the last records are damaged",
                    v.id, o.end, replay_from
                ));
            }
        }
        out
    }
}

/// Whether every byte of `vol` in `from..to` reads as zero (punched or never written).
/// Punched ranges are holes, which the kernel reads back without touching the disk.
fn all_zero(vol: &crate::log::volume::Volume, from: u64, to: u64) -> bool {
    use std::os::unix::fs::FileExt;
    const STEP: u64 = 1 << 20;
    let mut buf = vec![0u8; STEP as usize];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(STEP) as usize;
        let Some(part) = buf.get_mut(..n) else {
            return false;
        };
        if vol.file().read_exact_at(part, pos).is_err() || part.iter().any(|&b| b != 0) {
            return false;
        }
        pos += n as u64;
    }
    true
}

#[cfg(test)]
mod tests;
