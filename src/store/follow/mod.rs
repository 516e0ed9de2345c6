//! How a read-only open follows the writer: loading the catalog as open does without
//! writing anything, and `refresh`, which reads each volume on from where it stopped (see
//! `readonly.rs` for the rules: the visibility rule, "not yet", reloads, deferred changes).
//!
//! Invariants:
//! - files are only listed and read, never created, written, cut or removed; volumes are
//!   read with `pread`, never mapped (only the track file's checkpointed prefix, which the
//!   owner never rewrites, is); a file that vanishes or is not ready is skipped or makes the
//!   caller reload;
//! - records are applied in LSN order; a change that depends on what is not visible yet
//!   waits (at most `DEFER_ROUNDS` refreshes);
//! - a refresh either moves every position forward from what it read, or (when it cannot
//!   know what it missed) replaces the whole state by a fresh load.
//!
//! Here: positions, the records taken from scans, `refresh`; `load.rs` (the first load).

mod load;

use load::list_all;
pub(super) use load::load;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::readonly::{ReadOnly, RefreshReport};
use super::{Inner, OpenReport};
use crate::catalog::{Catalog, VolumeState};
use crate::error::{Error, Result};
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::log::scan::{scan, ScanOutcome};
use crate::log::volume::Volume;
use crate::store::open::confirm::Durable;

/// Times a load starts again because the owner rotated a checkpoint or removed a volume
/// while it read.
const LOAD_ATTEMPTS: usize = 4;
/// Refreshes a deferred change record waits for what it depends on before it is dropped
/// (and reported) as one whose base is missing.
const DEFER_ROUNDS: u32 = 8;

/// How far each volume was read.
#[derive(Debug, Clone, Copy)]
struct Pos {
    end: u64,
    sealed: bool,
}

#[derive(Default)]
pub(super) struct Follow {
    pos: HashMap<u32, Pos>,
    /// One past the highest volume id opened.
    pub next_id: u32,
    /// The loaded checkpoint's `next_volume_id` and volumes: a file with a lower id that it
    /// does not list was retired before it (a leftover the owner removes at its next open).
    ckpt_next_volume: u32,
    ckpt_volumes: HashSet<u32>,
    deferred: Vec<Deferred>,
}

struct Deferred {
    volume: u32,
    change: ChangeRecord,
    rounds: u32,
}

pub(super) struct Loaded {
    pub cat: Catalog,
    pub volumes: HashMap<u32, Arc<Volume>>,
    pub follow: Follow,
    pub report: OpenReport,
}

/// Opens a volume file read-only; `None` if it is not ready (a crash or the owner is
/// creating it: no header yet) or belongs to another store.
fn open_volume(path: &Path, dir: u16, store_id: [u8; 16], id: u32) -> Result<Option<Arc<Volume>>> {
    if super::open::unfinished_volume(path) {
        return Ok(None);
    }
    let v = Volume::open(path, dir, false)?;
    if v.header.store_id != store_id || v.id != id {
        return Ok(None);
    }
    Ok(Some(Arc::new(v)))
}

/// Scans a volume from `from`, keeping only what is visible: in an unsealed volume nothing
/// from the first invalid record on (it is being written).
fn scan_visible(vol: &Volume, from: u64) -> Result<ScanOutcome> {
    let mut o = scan(vol, from);
    if let Some(e) = o.unsupported.take() {
        return Err(e);
    }
    if !o.sealed {
        if let Some(cut) = o.damage.first().map(|d| d.from) {
            o.commits.retain(|(p, _)| *p < cut);
            o.changes.retain(|(p, _)| *p < cut);
            o.damage.clear();
            // `cut` is a header position, so the next scan starts there again.
            o.end = o.end.min(cut);
        }
    }
    Ok(o)
}

/// Records in the volume table what a scan found.
fn note_volume(cat: &mut Catalog, id: u32, dir: u16, pos: Pos) {
    let state = cat.volumes.entry(id).or_insert(VolumeState {
        id,
        dir,
        sealed: pos.sealed,
        replay_from: 0,
    });
    state.dir = dir;
    state.sealed = pos.sealed;
    state.replay_from = pos.end;
}

#[derive(Default)]
struct Counts {
    segments: usize,
    changes: usize,
    relocated: usize,
    damage: Vec<String>,
}

/// Commit and change records found by scans, to apply in LSN order.
#[derive(Default)]
struct Records {
    commits: Vec<(u32, u64, CommitRecord)>,
    changes: Vec<(u32, ChangeRecord, u32)>,
}

impl Records {
    /// Keeps a scan's records; returns where the volume was read to.
    fn take(&mut self, id: u32, o: ScanOutcome, damage: &mut Vec<String>) -> Pos {
        for d in &o.damage {
            damage.push(format!(
                "volume {id} offsets {}..{}: {}",
                d.from, d.to, d.what
            ));
        }
        for (pos, c) in o.commits {
            self.commits.push((id, pos, c));
        }
        for (_, c) in o.changes {
            self.changes.push((id, c, 0));
        }
        Pos {
            end: o.end,
            sealed: o.sealed,
        }
    }

    /// Applies everything in LSN order (with the deferred changes of earlier refreshes);
    /// changes that depend on what is not visible yet go back to `deferred`.
    fn apply(
        mut self,
        cat: &mut Catalog,
        volumes: &HashMap<u32, Arc<Volume>>,
        deferred: &mut Vec<Deferred>,
        encrypted: bool,
    ) -> Counts {
        let mut n = Counts::default();
        // A one-sync commit whose chunks did not all reach the disk (the owner crashed before
        // its fdatasync returned) is not shown: the owner leaves it out at its next open.
        let durable = Durable::new(
            volumes,
            Durable::watermarks(&self.commits),
            self.changes.iter().map(|(_, c, _)| c),
            encrypted,
        );
        self.commits
            .retain(|(_, _, c)| durable.check(c, cat).is_ok());
        for d in deferred.drain(..) {
            self.changes.push((d.volume, d.change, d.rounds + 1));
        }
        let mut commits = self.commits;
        let mut changes = self.changes;
        commits.sort_by_key(|(_, _, c)| std::cmp::Reverse(c.lsn));
        changes.sort_by_key(|(_, c, _)| std::cmp::Reverse(c.lsn));
        cat.reserve_exact(commits.len());
        loop {
            let next_commit = commits.last().map(|(_, _, c)| c.lsn);
            let next_change = changes.last().map(|(_, c, _)| c.lsn);
            let commit_first = match (next_commit, next_change) {
                (None, None) => break,
                (Some(a), Some(b)) => a < b,
                (a, _) => a.is_some(),
            };
            if commit_first {
                let Some((vol, pos, c)) = commits.pop() else {
                    break;
                };
                if cat.apply_commit(&c, vol, pos) {
                    n.segments += 1;
                    continue;
                }
                // A second commit record of a known segment: a copy made by compaction.
                let old = cat.get(c.segment_id).copied().and_then(|e| {
                    let v = volumes.get(&e.meta_volume)?;
                    let (_, payload) = v.read_record(e.meta_offset()).ok()?;
                    CommitRecord::decode(&payload, false)
                        .ok()
                        .filter(|o| o.segment_id == c.segment_id)
                });
                let newer = old.as_ref().is_none_or(|o| o.lsn < c.lsn);
                if newer && cat.relocate(&c, vol, pos, old.as_ref()) {
                    n.relocated += 1;
                }
            } else {
                let Some((vol, c, rounds)) = changes.pop() else {
                    break;
                };
                let waits = cat.delta_without_base(&c)
                    || (cat.get(c.segment_id).is_none() && c.segment_id >= cat.next_segment_id);
                if waits {
                    if rounds < DEFER_ROUNDS {
                        deferred.push(Deferred {
                            volume: vol,
                            change: c,
                            rounds,
                        });
                    } else {
                        n.damage.push(format!(
                            "volume {vol}: the change record (LSN {}) of segment {} applies to \
                             a state (LSN {}) that never became visible; its labels may be out \
                             of date",
                            c.lsn,
                            c.segment_id,
                            c.base_lsn.unwrap_or(0)
                        ));
                    }
                    continue;
                }
                if cat.apply_change(&c, vol) {
                    n.changes += 1;
                }
            }
        }
        n
    }
}

/// One `refresh` of a read-only open.
pub(super) fn refresh(inner: &Inner, ro: &ReadOnly) -> Result<RefreshReport> {
    let mut follow = ro.follow.lock();
    let mut out = RefreshReport::default();
    let mut scratch = OpenReport::default();
    let files = list_all(&inner.dirs, &follow, &mut scratch);
    let mut reload = false;
    // Volumes gone since the last refresh.
    let gone: Vec<u32> = follow
        .pos
        .keys()
        .filter(|id| !files.contains_key(id))
        .copied()
        .collect();
    for id in &gone {
        if follow.pos.get(id).is_some_and(|p| !p.sealed) {
            // Not read to its seal: what it held after our position is only in the
            // checkpoint the owner wrote before removing it.
            reload = true;
        }
    }
    // A volume id never seen that is gone already (made and removed between refreshes).
    let max_listed = files.keys().copied().max().unwrap_or(0);
    if (follow.next_id..max_listed).any(|id| !files.contains_key(&id)) {
        reload = true;
    }
    let mut rec = Records::default();
    let mut opened: Vec<(u32, Arc<Volume>, Pos)> = Vec::new();
    if !reload {
        let mut ids: Vec<u32> = files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let known = follow.pos.get(&id).copied();
            if known.is_some_and(|p| p.sealed) {
                continue;
            }
            let vol = match (known, inner.volume(id)) {
                (Some(_), Some(v)) => v,
                _ => {
                    let Some((dir, path)) = files.get(&id) else {
                        continue;
                    };
                    match open_volume(path, *dir, inner.store_id, id) {
                        Ok(Some(v)) => v,
                        // Being created (or vanished since the listing): next time.
                        Ok(None) => continue,
                        Err(Error::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let from = known.map_or(0, |p| p.end);
            if vol.len()? < from {
                // Cut back (a write the owner failed to make durable): start over.
                reload = true;
                break;
            }
            out.scanned_volumes += 1;
            let o = scan_visible(&vol, from)?;
            let pos = rec.take(id, o, &mut out.damage);
            if known.is_none() {
                out.new_volumes += 1;
            }
            opened.push((id, vol, pos));
        }
    }
    if reload {
        let before = inner.catalog.read().len();
        let loaded = load(
            &inner.root,
            inner.store_id,
            &inner.dirs,
            inner.crypt.is_some(),
        )?;
        let after = loaded.cat.len();
        out = RefreshReport {
            segments: after.saturating_sub(before),
            changes: loaded.report.replayed_changes,
            relocated: loaded.report.relocated,
            reloaded: true,
            deferred: loaded.follow.deferred.len(),
            damage: loaded.report.damage.clone(),
            ..RefreshReport::default()
        };
        let vols_before: HashSet<u32> = inner.volumes.read().keys().copied().collect();
        out.new_volumes = loaded
            .volumes
            .keys()
            .filter(|id| !vols_before.contains(id))
            .count();
        out.removed_volumes = vols_before
            .iter()
            .filter(|id| !loaded.volumes.contains_key(id))
            .count();
        // Readers never find a catalog entry whose volume is not in the map: the new
        // volumes join the old ones, the catalog is swapped, then the old ones leave.
        {
            let mut v = inner.volumes.write();
            for (id, vol) in &loaded.volumes {
                v.insert(*id, Arc::clone(vol));
            }
        }
        *inner.catalog.write() = loaded.cat;
        *inner.volumes.write() = loaded.volumes;
        *follow = loaded.follow;
        return Ok(out);
    }
    for (id, vol, pos) in &opened {
        follow.next_id = follow.next_id.max(id.saturating_add(1));
        follow.pos.insert(*id, *pos);
        inner.volumes.write().insert(*id, Arc::clone(vol));
    }
    {
        let volumes = inner.volumes.read().clone();
        let mut cat = inner.catalog.write();
        for (id, vol, pos) in &opened {
            note_volume(&mut cat, *id, vol.dir, *pos);
        }
        let mut deferred = std::mem::take(&mut follow.deferred);
        let counts = rec.apply(&mut cat, &volumes, &mut deferred, inner.crypt.is_some());
        follow.deferred = deferred;
        out.segments = counts.segments;
        out.changes = counts.changes;
        out.relocated = counts.relocated;
        out.damage.extend(counts.damage);
        // Gone volumes leave only after the moves that replaced them were applied (their
        // old commit records were read above).
        for id in &gone {
            cat.volumes.remove(id);
            cat.volume_live.remove(id);
        }
    }
    for id in &gone {
        inner.volumes.write().remove(id);
        follow.pos.remove(id);
    }
    out.removed_volumes = gone.len();
    out.deferred = follow.deferred.len();
    Ok(out)
}
