//! Loading the catalog for a read-only open as `open` does, without writing anything: the
//! newest checkpoint that can be read while the owner may be replacing it (retried), then
//! every volume scanned up to what is visible.
//!
//! Invariant: nothing is written, created or removed; a checkpoint that vanishes under the
//! load (rotated by the owner), or a newer one written meanwhile, starts it again, at most
//! `LOAD_ATTEMPTS` times.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::{checkpoint, Catalog};
use crate::error::{Error, Result};
use crate::index::tracks::TrackStore;
use crate::store::{DataDir, OpenReport};

use super::{note_volume, open_volume, scan_visible, Follow, Loaded, Pos, Records, LOAD_ATTEMPTS};

/// Loads the catalog as open does (newest checkpoint, then the log after it), reading only.
/// `encrypted`: the store's chunks are sealed (it decides the form of their records).
pub(in crate::store) fn load(
    root: &Path,
    store_id: [u8; 16],
    dirs: &[DataDir],
    encrypted: bool,
) -> Result<Loaded> {
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
        let counts = rec.apply(&mut cat, &volumes, &mut follow.deferred, encrypted);
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
pub(super) fn list_all(
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
