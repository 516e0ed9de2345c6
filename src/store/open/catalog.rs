//! Opening, step 3: the catalog as of the newest usable checkpoint (FORMAT.md §9), with the
//! index's track file it relies on; an empty catalog when there is none.
//!
//! Invariant: a checkpoint of an unknown version refuses the open; any other bad checkpoint
//! (unreadable, damaged, another store's, or one whose track bytes are gone) is reported and
//! passed over, down to an empty catalog rebuilt from the log.

use std::fs;
use std::path::Path;

use super::OpenReport;
use crate::catalog::{checkpoint, Catalog};
use crate::error::{Error, Result};
use crate::index::tracks::TrackStore;

/// The catalog to replay onto and the sequence number of the checkpoint it came from.
pub(super) fn load_catalog(
    root: &Path,
    store_id: &[u8; 16],
    report: &mut OpenReport,
) -> Result<(Catalog, u64)> {
    let t0 = std::time::Instant::now();
    let (mut cat, ckpt_seq, tracks_len) = load_checkpoint(root, store_id, report)?;
    let t_ckpt = t0.elapsed();
    let catalog_dir = root.join("catalog");
    match TrackStore::open(&catalog_dir, store_id, tracks_len)? {
        Some(tracks) => cat.index.tracks = tracks,
        None => {
            // The checkpoint relies on track bytes that are gone: rebuild everything from the
            // log (slow, but nothing is lost).
            report.bad_checkpoints.push(format!(
                "{}: shorter than the checkpoint needs or damaged; catalog rebuilt from the log",
                catalog_dir
                    .join(crate::index::tracks::TRACKS_FILE)
                    .display()
            ));
            report.checkpoint = None;
            cat = Catalog::new();
            cat.index.tracks = TrackStore::open(&catalog_dir, store_id, 0)?
                .ok_or_else(|| Error::Invalid("cannot create the track file".into()))?;
        }
    }
    tracing::debug!(
        checkpoint_ms = t_ckpt.as_secs_f64() * 1e3,
        tracks_ms = (t0.elapsed() - t_ckpt).as_secs_f64() * 1e3,
        "catalog loaded"
    );
    Ok((cat, ckpt_seq))
}

fn load_checkpoint(
    root: &Path,
    store_id: &[u8; 16],
    report: &mut OpenReport,
) -> Result<(Catalog, u64, u64)> {
    let files = checkpoint::list(&root.join("catalog"))?;
    let newest = files.first().map_or(0, |f| f.0);
    for (seq, path) in files {
        let t0 = std::time::Instant::now();
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                report
                    .bad_checkpoints
                    .push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let t_read = t0.elapsed();
        let decoded = checkpoint::decode(&data);
        tracing::debug!(
            read_ms = t_read.as_secs_f64() * 1e3,
            decode_ms = (t0.elapsed() - t_read).as_secs_f64() * 1e3,
            bytes = data.len(),
            "checkpoint read and decoded"
        );
        match decoded {
            Ok((cat, id, tracks_len)) if &id == store_id => {
                report.checkpoint = Some(path.display().to_string());
                return Ok((cat, newest.max(seq), tracks_len));
            }
            Ok(_) => report
                .bad_checkpoints
                .push(format!("{}: belongs to another store", path.display())),
            Err(crate::format::DecodeError::UnsupportedVersion {
                found, supported, ..
            }) => {
                return Err(Error::UnsupportedVersion {
                    what: "checkpoint",
                    path,
                    found,
                    supported,
                })
            }
            Err(e) => report
                .bad_checkpoints
                .push(format!("{}: {e}", path.display())),
        }
    }
    Ok((Catalog::new(), newest, 0))
}
