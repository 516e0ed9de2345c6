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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::readonly::{ReadOnly, RefreshReport};
use super::{DataDir, Inner, OpenReport};
use crate::catalog::{checkpoint, Catalog, VolumeState};
use crate::error::{Error, Result};
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::index::tracks::TrackStore;
use crate::log::scan::{scan, ScanOutcome};
use crate::log::volume::Volume;

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

/// Loads the catalog as open does (newest checkpoint, then the log after it), reading only.
pub(super) fn load(root: &Path, store_id: [u8; 16], dirs: &[DataDir]) -> Result<Loaded> {
    let catalog_dir = root.join("catalog");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= LOAD_ATTEMPTS;
        let mut report = OpenReport::default();
        let listed = checkpoint::list(&catalog_dir)?;
        let Some((mut cat, tracks_len)) = read_checkpoint(&listed, &store_id, &mut report)? else {
            if last {
                return Err(Error::Invalid(format!(
                    "the checkpoints in {} kept vanishing while they were read; try again",
                    catalog_dir.display()
                )));
            }
            continue; // a checkpoint vanished under us (rotated): list again
        };
        let tracks = match TrackStore::open_read_only(&catalog_dir, &store_id, tracks_len)? {
            Some(t) => t,
            None if !last => continue,
            None => {
                report.bad_checkpoints.push(format!(
                    "{}: shorter than the checkpoint needs or damaged; catalog rebuilt from the log",
                    catalog_dir
                        .join(crate::index::tracks::TRACKS_FILE)
                        .display()
                ));
                report.checkpoint = None;
                cat = Catalog::new();
                TrackStore::open_read_only(&catalog_dir, &store_id, 0)?
                    .ok_or_else(|| Error::Invalid("cannot read the track file".into()))?
            }
        };
        cat.index.tracks = tracks;
        let mut follow = Follow {
            ckpt_next_volume: cat.next_volume_id,
            ckpt_volumes: cat.volumes.keys().copied().collect(),
            ..Follow::default()
        };
        let files = list_all(dirs, &follow, &mut report);
        // A volume the checkpoint lists that is gone: retired after it. If the owner wrote a
        // newer checkpoint meanwhile, start again from that one.
        let mut missing = Vec::new();
        let mut never_made = Vec::new();
        for (id, v) in &cat.volumes {
            let dir_ok = dirs
                .get(usize::from(v.dir))
                .is_some_and(|d| d.failed.lock().is_none());
            if files.contains_key(id) || !dir_ok {
                continue;
            }
            if !v.sealed && v.replay_from == 0 {
                never_made.push(*id);
            } else {
                missing.push(*id);
            }
        }
        if !missing.is_empty() && !last && checkpoint::list(&catalog_dir)? != listed {
            continue;
        }
        for id in missing {
            report
                .bad_volumes
                .push(format!("volume {id} is missing from its data dir"));
        }
        for id in never_made {
            cat.volumes.remove(&id);
            cat.volume_live.remove(&id);
        }
        let mut volumes = HashMap::new();
        let mut rec = Records::default();
        let mut ids: Vec<u32> = files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some((dir, path)) = files.get(&id) else {
                continue;
            };
            let vol = match open_volume(path, *dir, store_id, id) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                Err(e) => {
                    report.bad_volumes.push(e.to_string());
                    continue;
                }
            };
            follow.next_id = follow.next_id.max(id.saturating_add(1));
            let known = cat.volumes.get(&id).copied();
            let len = vol.len()?;
            let mut from = known.map_or(0, |k| k.replay_from);
            if from > len {
                from = 0;
            }
            let pos = if known.is_some_and(|k| k.sealed && k.replay_from >= len) {
                Pos {
                    end: len,
                    sealed: true,
                }
            } else {
                report.scanned_volumes += 1;
                let o = scan_visible(&vol, from)?;
                rec.take(id, o, &mut report.damage)
            };
            note_volume(&mut cat, id, vol.dir, pos);
            follow.pos.insert(id, pos);
            volumes.insert(id, vol);
        }
        let counts = rec.apply(&mut cat, &volumes, &mut follow.deferred);
        report.replayed = counts.segments;
        report.replayed_changes = counts.changes;
        report.relocated = counts.relocated;
        report.damage.extend(counts.damage);
        cat.shrink_to_fit();
        return Ok(Loaded {
            cat,
            volumes,
            follow,
            report,
        });
    }
}

/// The newest usable checkpoint: `None` if a listed file vanished (rotated by the owner).
fn read_checkpoint(
    listed: &[(u64, PathBuf)],
    store_id: &[u8; 16],
    report: &mut OpenReport,
) -> Result<Option<(Catalog, u64)>> {
    for (_, path) in listed {
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                report
                    .bad_checkpoints
                    .push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match checkpoint::decode(&data) {
            Ok((cat, id, tracks_len)) if &id == store_id => {
                report.checkpoint = Some(path.display().to_string());
                return Ok(Some((cat, tracks_len)));
            }
            Ok(_) => report
                .bad_checkpoints
                .push(format!("{}: belongs to another store", path.display())),
            Err(crate::format::DecodeError::UnsupportedVersion {
                found, supported, ..
            }) => {
                return Err(Error::UnsupportedVersion {
                    what: "checkpoint",
                    path: path.clone(),
                    found,
                    supported,
                })
            }
            Err(e) => report
                .bad_checkpoints
                .push(format!("{}: {e}", path.display())),
        }
    }
    Ok(Some((Catalog::new(), 0)))
}

/// Volume files of every data dir, by id (retired leftovers and unfinished compaction
/// targets left out). A dir that cannot be listed is marked failed.
fn list_all(
    dirs: &[DataDir],
    follow: &Follow,
    report: &mut OpenReport,
) -> HashMap<u32, (u16, PathBuf)> {
    let mut out = HashMap::new();
    for d in dirs {
        let rd = match fs::read_dir(&d.path) {
            Ok(rd) => rd,
            Err(e) => {
                let why = e.to_string();
                report
                    .failed_dirs
                    .push(format!("{}: {why}", d.path.display()));
                *d.failed.lock() = Some(why);
                continue;
            }
        };
        for ent in rd.flatten() {
            let Some(id) = ent
                .file_name()
                .to_str()
                .and_then(crate::log::parse_volume_file_name)
            else {
                continue;
            };
            if id < follow.ckpt_next_volume && !follow.ckpt_volumes.contains(&id) {
                continue; // retired before the checkpoint; the owner removes it
            }
            out.insert(id, (d.index, ent.path()));
        }
    }
    out
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
    ) -> Counts {
        let mut n = Counts::default();
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
        let loaded = load(&inner.root, inner.store_id, &inner.dirs)?;
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
        let counts = rec.apply(&mut cat, &volumes, &mut deferred);
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
