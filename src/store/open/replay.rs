//! Opening, steps 6 and 7: each volume scanned from where the checkpoint left it (torn tails
//! of unsealed volumes cut back), then every commit and change record found applied to the
//! catalog in LSN order.
//!
//! Invariants:
//! - only record headers and commit/change/seal payloads are read, and the chunks of a
//!   one-sync commit record (FORMAT §11) that lie past the durable watermark of their volume;
//!   such a commit is applied only if every one of those chunks passes its checks (else it is
//!   left out and the chunk's volume sealed, so no later watermark can cover the chunk);
//! - a torn tail is cut only from a volume that was still active (unsealed); damage inside a
//!   volume is reported and never "repaired" by truncation;
//! - a scanned record of a newer format version refuses the open; that volume is never cut;
//! - records are applied in LSN order; applying one already in the checkpoint is a no-op, and
//!   a later commit record of a known segment (a compaction copy) moves it only if newer.

use std::collections::HashMap;
use std::sync::Arc;

use super::OpenReport;
use crate::catalog::{Catalog, VolumeState};
use crate::error::{IoContext, Result};
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::log::scan::scan;
use crate::log::volume::Volume;
use crate::store::open::audited::Ingested;
use crate::store::open::confirm::{Durable, Unconfirmed};

/// What the scan of the volumes found: the records to replay, and the unsealed volumes with
/// the end of their last valid record (they take writes again, step 8).
pub(super) struct Scanned {
    pub commits: Vec<(u32, u64, CommitRecord)>,
    pub changes: Vec<(u32, ChangeRecord)>,
    pub active: Vec<(Arc<Volume>, u64)>,
    /// Volumes that must not take writes again (crash residue, or a chunk of an unconfirmed
    /// commit).
    pub seal: Vec<u32>,
    /// One-sync commits with a chunk that fails its checks (see [`leave_out`]).
    pub unconfirmed: Vec<Unconfirmed>,
}

/// Decides the commits of `scanned.unconfirmed`. One whose segment has an `ingest` entry
/// with its SHA-256 in the audit log (`acknowledged`) was acknowledged, so its chunk was
/// durable and has rotted since: it stays, and the damage is reported (reads of that chunk
/// fail until it is repaired). Any other never became durable before a crash: it is left
/// out, its id and LSN are never handed out again, and the chunk's volume takes no more
/// writes (no later watermark may cover the chunk).
pub(super) fn leave_out(
    cat: &mut Catalog,
    scanned: &mut Scanned,
    acknowledged: &std::collections::HashSet<u64>,
    report: &mut OpenReport,
) {
    for u in std::mem::take(&mut scanned.unconfirmed) {
        scanned.seal.push(u.volume);
        if acknowledged.contains(&u.segment) {
            report.damage.push(format!(
                "volume {} offset {}: segment {} (commit LSN {}), acknowledged: {}",
                u.volume, u.offset, u.segment, u.lsn, u.why
            ));
            continue;
        }
        tracing::warn!(segment = u.segment, lsn = u.lsn, volume = u.volume, why = %u.why,
            "a commit record names a chunk that did not become durable before a crash: the \
             segment was never acknowledged and is left out");
        scanned
            .commits
            .retain(|(_, _, c)| !(c.segment_id == u.segment && c.lsn == u.lsn));
        cat.next_segment_id = cat.next_segment_id.max(u.segment.saturating_add(1));
        cat.next_lsn = cat.next_lsn.max(u.lsn.saturating_add(1));
        report.unconfirmed.push(u.segment);
    }
}

/// Step 6: scans every volume in id order from its `replay_from`, cuts torn tails, maps
/// sealed volumes and records each volume's state in the catalog.
pub(super) fn scan_volumes(
    cat: &mut Catalog,
    volumes: &HashMap<u32, Arc<Volume>>,
    encrypted: bool,
    report: &mut OpenReport,
) -> Result<Scanned> {
    let mut out = Scanned {
        commits: Vec::new(),
        changes: Vec::new(),
        active: Vec::new(),
        seal: Vec::new(),
        unconfirmed: Vec::new(),
    };
    let mut ids: Vec<u32> = volumes.keys().copied().collect();
    ids.sort_unstable();
    // The durable watermark of each scanned volume: the highest `durable_to` of its records.
    let mut watermarks: HashMap<u32, u64> = HashMap::new();
    for id in ids {
        let Some(vol) = volumes.get(&id).cloned() else {
            continue;
        };
        let known = cat.volumes.get(&id).copied();
        let len = vol.len()?;
        let mut from = known.map_or(0, |k| k.replay_from);
        if from > len {
            report.damage.push(format!(
                "volume {id} is shorter ({len} bytes) than the checkpoint recorded ({from}): rescanned"
            ));
            from = 0;
        }
        let outcome = if known.is_some_and(|k| k.sealed && k.replay_from >= len) {
            None
        } else {
            report.scanned_volumes += 1;
            Some(scan(&vol, from))
        };
        let (sealed, end) = match outcome {
            None => (true, len),
            Some(o) => {
                if let Some(e) = o.unsupported {
                    return Err(e);
                }
                for d in &o.damage {
                    report.damage.push(format!(
                        "volume {id} offsets {}..{}: {}",
                        d.from, d.to, d.what
                    ));
                }
                for d in &o.residue {
                    tracing::info!(volume = id, from = d.from, to = d.to, what = %d.what,
                        "bytes a crash kept from the disk before their fdatasync returned \
                         (never acknowledged); the volume will be sealed");
                }
                if !o.residue.is_empty() {
                    out.seal.push(id);
                }
                let mark = watermarks.entry(id).or_insert(0);
                for (pos, c) in o.commits {
                    *mark = (*mark).max(c.durable_to);
                    out.commits.push((id, pos, c));
                }
                for (_, c) in o.changes {
                    out.changes.push((id, c));
                }
                // Nothing after the replay start, and a seal record right before it: the
                // volume was sealed while a checkpoint listed its writer (fixed since, and
                // caught here for stores that such a checkpoint left behind).
                let sealed_before = !o.sealed
                    && from > 0
                    && o.end == from
                    && crate::log::scan::seal_ends_at(&vol, from);
                if sealed_before {
                    tracing::warn!(
                        volume = id,
                        replay_from = from,
                        "the checkpoint calls this volume active, but its seal record ends \
                         where its replay starts: taken as sealed"
                    );
                }
                let sealed = o.sealed || sealed_before || known.is_some_and(|k| k.sealed);
                if !sealed && o.file_len > o.end {
                    // A power cut mid-append: drop the incomplete record(s).
                    crate::fsio::set_len(vol.file(), o.end).at(&vol.path)?;
                    crate::fsio::sync_all(vol.file(), "open.cut_tail").at(&vol.path)?;
                    report.torn_bytes += o.file_len - o.end;
                }
                if !sealed && !o.damage.is_empty() {
                    report
                        .damage
                        .push(format!("volume {id} will be sealed because it is damaged"));
                }
                if !sealed {
                    out.active.push((Arc::clone(&vol), o.end));
                }
                (sealed, o.end)
            }
        };
        if sealed {
            vol.map_sealed()?;
        }
        let state = cat.volumes.entry(id).or_insert(VolumeState {
            id,
            dir: vol.dir,
            sealed,
            replay_from: 0,
        });
        state.dir = vol.dir;
        state.sealed = sealed;
        state.replay_from = if sealed { end } else { state.replay_from };
    }
    // One-sync commits whose chunks did not all become durable (confirm.rs): decided by
    // `leave_out`, once the audit log has said which of them were acknowledged.
    let durable = Durable::new(
        volumes,
        watermarks,
        out.changes.iter().map(|(_, c)| c),
        encrypted,
    );
    for (_, _, c) in &out.commits {
        if let Err(u) = durable.check(c, cat) {
            out.unconfirmed.push(u);
        }
    }
    Ok(out)
}

/// Step 7: applies the commit and change records found, in their one LSN sequence. Returns
/// the new segments whose records name the actor (their `ingest` entries were batched).
pub(super) fn replay(
    cat: &mut Catalog,
    mut commits: Vec<(u32, u64, CommitRecord)>,
    mut changes: Vec<(u32, ChangeRecord)>,
    volumes: &HashMap<u32, Arc<Volume>>,
    report: &mut OpenReport,
) -> Vec<Ingested> {
    let mut ingested = Vec::new();
    // Commits and changes share one LSN sequence: apply them in it. The tables grow once,
    // by at most what the log holds, and give back what replay did not use (no doubling).
    commits.sort_by_key(|(_, _, c)| std::cmp::Reverse(c.lsn));
    changes.sort_by_key(|(_, c)| std::cmp::Reverse(c.lsn));
    let replaying = !commits.is_empty();
    if replaying {
        cat.reserve_exact(commits.len());
    }
    loop {
        let next_commit = commits.last().map(|(_, _, c)| c.lsn);
        let next_change = changes.last().map(|(_, c)| c.lsn);
        let commit_first = match (next_commit, next_change) {
            (None, None) => break,
            (Some(a), Some(b)) => a < b,
            (a, _) => a.is_some(),
        };
        if commit_first {
            if let Some((vol, pos, c)) = commits.pop() {
                if replay_commit(cat, vol, pos, &c, volumes, report) {
                    ingested.extend(ingested_by(c));
                }
            }
        } else if let Some((vol, c)) = changes.pop() {
            replay_change(cat, vol, &c, report);
        }
    }
    if replaying {
        cat.shrink_to_fit();
    }
    ingested
}

/// The ingest a commit record of a new segment tells of, if it names its actor.
fn ingested_by(c: CommitRecord) -> Option<Ingested> {
    Some(Ingested {
        segment: c.segment_id,
        sha256: c.sha256,
        bytes: c.bytes,
        committed_us: c.committed_us,
        officer: c.meta.officer,
        device: c.meta.device,
        actor: c.actor?,
    })
}

/// One commit record (in volume `vol` at `pos`): adds its segment (true), or moves it to this
/// copy.
fn replay_commit(
    cat: &mut Catalog,
    vol: u32,
    pos: u64,
    c: &CommitRecord,
    volumes: &HashMap<u32, Arc<Volume>>,
    report: &mut OpenReport,
) -> bool {
    if cat.apply_commit(c, vol, pos) {
        report.replayed += 1;
        true
    } else {
        // A second commit record of a known segment, later in LSN order than
        // whatever placed it: a copy made by compaction. It wins.
        let old = cat.get(c.segment_id).copied().and_then(|e| {
            let v = volumes.get(&e.meta_volume)?;
            let (_, payload) = v.read_record(e.meta_offset()).ok()?;
            CommitRecord::decode(&payload, false)
                .ok()
                .filter(|o| o.segment_id == c.segment_id)
        });
        // Only a newer copy moves it: a rescan of an old volume (one shorter
        // than its checkpoint said) must not move it back.
        let newer = old.as_ref().is_none_or(|o| o.lsn < c.lsn);
        if newer && cat.relocate(c, vol, pos, old.as_ref()) {
            report.relocated += 1;
        }
        false
    }
}

/// One change record (in volume `vol`), reported if the state it changes is missing.
fn replay_change(cat: &mut Catalog, vol: u32, c: &ChangeRecord, report: &mut OpenReport) {
    if cat.delta_without_base(c) {
        report.damage.push(format!(
            "volume {vol}: the change record (LSN {}) of segment {} applies to a \
             state (LSN {}) whose record is missing; the segment's labels may be \
             out of date",
            c.lsn,
            c.segment_id,
            c.base_lsn.unwrap_or(0)
        ));
    }
    if cat.apply_change(c, vol) {
        report.replayed_changes += 1;
    }
}
