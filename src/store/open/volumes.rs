//! Opening, steps 4 and 5: every data dir and the volumes in it. Leftovers of a crash are
//! removed (unfinished compaction targets, volumes retired before they could be removed,
//! volumes whose creation was cut short); each remaining volume is opened and its header
//! checked; volumes the checkpoint knows but that were not found are reported, or forgotten
//! when their file was never made.
//!
//! Invariants:
//! - a data dir that cannot be created or listed is marked failed: none of its volumes is
//!   opened and its missing volumes are not reported;
//! - a volume header of a newer format version refuses the open; any other bad volume is
//!   reported and left alone.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::config::Settings;
use super::OpenReport;
use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::log::volume::Volume;
use crate::store::DataDir;

/// The data dirs and the volumes opened in them.
pub(super) struct Found {
    pub dirs: Vec<DataDir>,
    pub volumes: HashMap<u32, Arc<Volume>>,
    /// The highest volume id among the files found (0 if none).
    pub max_file_id: u32,
}

/// Step 4: each data dir of the configuration, in order, and its volumes.
pub(super) fn open_volumes(
    root: &Path,
    settings: &Settings,
    cat: &Catalog,
    report: &mut OpenReport,
) -> Result<Found> {
    let mut found = Found {
        dirs: Vec::new(),
        volumes: HashMap::new(),
        max_file_id: 0,
    };
    for i in 0..settings.config.data_dirs.len() {
        let path = settings.config.data_dir(root, i).unwrap_or_default();
        let dir = DataDir {
            index: i as u16,
            path: path.clone(),
            failed: Mutex::new(None),
        };
        let listed = list_volumes(&path, report).map_err(|e| e.to_string());
        // A data dir on another disk is given to the store's group like the root.
        let listed = match &settings.group {
            Some((name, gid)) => listed.and_then(|files| {
                crate::perms::give_dir_to_group(&path, name, *gid)
                    .map(|_| files)
                    .map_err(|e| e.to_string())
            }),
            None => listed,
        };
        match listed {
            Ok(files) => {
                for (id, file) in files {
                    found.max_file_id = found.max_file_id.max(id);
                    open_volume_file(&dir, id, file, settings, cat, &mut found, report)?;
                }
            }
            Err(e) => {
                report.failed_dirs.push(format!("{}: {e}", path.display()));
                *dir.failed.lock() = Some(e);
            }
        }
        found.dirs.push(dir);
    }
    Ok(found)
}

/// One volume file of data dir `dir`: removed if a crash left it behind, else opened and
/// added to `found` if its header is this store's and its id is its own.
fn open_volume_file(
    dir: &DataDir,
    id: u32,
    file: PathBuf,
    settings: &Settings,
    cat: &Catalog,
    found: &mut Found,
    report: &mut OpenReport,
) -> Result<()> {
    if id < cat.next_volume_id && !cat.volumes.contains_key(&id) {
        // Every volume below the checkpoint's next id is listed in it unless
        // the store retired it (compaction or drop) before the checkpoint:
        // this file is what a crash left before it could be removed.
        crate::fsio::remove_file(&file).at(&file)?;
        crate::log::sync_dir(&dir.path, "open.retired.dir")?;
        report.removed_files.push(format!(
            "{}: volume retired before a crash, removed",
            file.display()
        ));
        return Ok(());
    }
    if id >= cat.next_volume_id && unfinished_volume(&file) {
        // A power cut during `Volume::create`: the name reached the disk but
        // not the header, so no record was ever written to it.
        crate::fsio::remove_file(&file).at(&file)?;
        crate::log::sync_dir(&dir.path, "open.retired.dir")?;
        report.removed_files.push(format!(
            "{}: volume whose creation a crash cut short, removed",
            file.display()
        ));
        return Ok(());
    }
    match Volume::open(&file, dir.index, true) {
        Ok(v) if v.header.store_id != settings.store_id => report.bad_volumes.push(format!(
            "{}: belongs to another store, ignored",
            file.display()
        )),
        Ok(v) if v.id != id || found.volumes.contains_key(&id) => report.bad_volumes.push(format!(
            "{}: volume id {} clashes, ignored",
            file.display(),
            v.id
        )),
        Ok(v) => {
            found.volumes.insert(id, Arc::new(v));
        }
        Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
        Err(e) => report.bad_volumes.push(e.to_string()),
    }
    Ok(())
}

/// Step 5: a volume the checkpoint knows that was not found, in a dir that did not fail, is
/// reported missing, unless its file was never made (then it is forgotten).
pub(super) fn forget_never_made(cat: &mut Catalog, found: &Found, report: &mut OpenReport) {
    let mut never_made = Vec::new();
    for (id, v) in &cat.volumes {
        let dir_ok = found
            .dirs
            .get(usize::from(v.dir))
            .is_some_and(|d| d.failed.lock().is_none());
        if !found.volumes.contains_key(id) && dir_ok {
            if !v.sealed && v.replay_from == 0 {
                // Listed when its id was taken, but its file was never made (a crash while
                // creating it, or an unfinished compaction target): nothing was in it.
                never_made.push(*id);
                continue;
            }
            report
                .bad_volumes
                .push(format!("volume {id} is missing from data dir {}", v.dir));
        }
    }
    for id in never_made {
        cat.volumes.remove(&id);
        cat.volume_live.remove(&id);
    }
}

/// Whether the volume file at `path` is shorter than its header or has an all-zero header:
/// what a crash during its creation leaves (the header is made durable before the volume is
/// used, so such a file never held a record).
pub(in crate::store) fn unfinished_volume(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; crate::format::volume::VOLUME_HEADER_LEN];
    match f.read_exact_at(&mut head, 0) {
        Ok(()) => head.iter().all(|b| *b == 0),
        Err(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

/// Volume files in a data dir, creating the dir if it does not exist. Unfinished compaction
/// targets (`*.ftv.compacting`, never renamed into place) are removed.
fn list_volumes(
    dir: &Path,
    report: &mut OpenReport,
) -> std::io::Result<Vec<(u32, std::path::PathBuf)>> {
    crate::fsio::create_dir_all(dir)?;
    let mut out = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.ends_with(crate::store::lifecycle::compact::COMPACTING_SUFFIX))
        {
            crate::fsio::remove_file(&ent.path())?;
            report.removed_files.push(format!(
                "{}: unfinished compaction, removed",
                ent.path().display()
            ));
            continue;
        }
        if let Some(id) = ent
            .file_name()
            .to_str()
            .and_then(crate::log::parse_volume_file_name)
        {
            out.push((id, ent.path()));
        }
    }
    Ok(out)
}
