//! A failing disk: noticing at run time that a data dir has become unreadable, and naming the
//! segments whose local copy is out of reach (`stats`, `verify`).
//!
//! Invariants:
//! - a data dir is marked failed at run time only when a read gets an I/O error (not a CRC
//!   failure) *and* the header of the same volume cannot be read either: one bad sector does
//!   not take a whole disk out of service, a dead or vanished disk does;
//! - a failed dir gets no new segments (`pick_dir` skips it) until the store is reopened,
//!   when the dir is tried again;
//! - nothing is deleted or forgotten: the catalog keeps every segment of a lost dir, reads of
//!   those with a verified cloud copy go to the cloud, the others fail with
//!   `Error::Unavailable`.

use serde::Serialize;

use crate::error::Error;
use crate::format::change::FLAG_UPLOADED;
use crate::log::volume::Volume;
use crate::store::{Inner, Store};

/// A segment whose local copy cannot be reached.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LostSegment {
    /// The segment id (decimal).
    pub id: String,
    /// The volume holding its commit record.
    pub volume: u32,
    /// The data dir that volume was in, if known.
    pub dir: Option<u16>,
    /// Why its local copy cannot be reached.
    pub reason: String,
    /// A verified cloud copy exists: reads are served from it.
    pub cloud_copy: bool,
}

impl Inner {
    /// A read of `vol` failed with an I/O error: if even its header cannot be read, the
    /// disk is taken for failed and its data dir is marked so.
    pub(crate) fn note_volume_failure(&self, vol: &Volume, why: &str) {
        if vol.probe().is_ok() {
            return;
        }
        if let Some(d) = self.dirs.get(usize::from(vol.dir)) {
            let mut failed = d.failed.lock();
            if failed.is_none() {
                *failed = Some(format!(
                    "reads failed while the store was open ({why}); check the disk, then reopen the store"
                ));
            }
        }
    }

    /// A segment's commit record could not be read: see whether its disk failed.
    pub(crate) fn note_read_failure(&self, id: u64, err: &Error) {
        if !matches!(err, Error::Io { .. }) {
            return;
        }
        let vid = self.catalog.read().get(id).map(|e| e.meta_volume);
        if let Some(vol) = vid.and_then(|v| self.volume(v)) {
            self.note_volume_failure(&vol, &err.to_string());
        }
    }

    /// Reads the header of one volume in each working data dir, so a disk that died since
    /// the last read is noticed (64 bytes per dir; `stats` calls it).
    pub(crate) fn probe_dirs(&self) {
        let mut seen: Vec<u16> = Vec::new();
        let vols: Vec<std::sync::Arc<Volume>> = self.volumes.read().values().cloned().collect();
        for v in vols {
            if seen.contains(&v.dir) || self.dir_failed(v.dir).is_some() {
                continue;
            }
            seen.push(v.dir);
            if let Err(e) = v.probe() {
                self.note_volume_failure(&v, &e.to_string());
            }
        }
    }

    /// Whether data dir `dir` is marked failed.
    pub(crate) fn dir_failed(&self, dir: u16) -> Option<String> {
        self.dirs
            .get(usize::from(dir))
            .and_then(|d| d.failed.lock().clone())
    }

    /// Every live segment whose commit record is in a volume that is not open or whose data
    /// dir failed (segments are written whole to one dir, so their chunks are there too).
    pub(crate) fn lost_segments(&self) -> Vec<LostSegment> {
        let failed: Vec<Option<String>> = (0..self.dirs.len())
            .map(|i| self.dir_failed(i as u16))
            .collect();
        let cat = self.catalog.read();
        let vols = self.volumes.read();
        let mut out = Vec::new();
        for e in cat.live() {
            let dir = cat.volumes.get(&e.meta_volume).map(|v| v.dir);
            let reason = match vols.get(&e.meta_volume) {
                None => Some(
                    match dir.and_then(|d| failed.get(usize::from(d)).cloned().flatten()) {
                        Some(why) => format!("data dir {} failed: {why}", dir.unwrap_or_default()),
                        None => format!("volume {} is missing", e.meta_volume),
                    },
                ),
                Some(v) => failed
                    .get(usize::from(v.dir))
                    .cloned()
                    .flatten()
                    .map(|why| format!("data dir {} failed: {why}", v.dir)),
            };
            let Some(reason) = reason else { continue };
            out.push(LostSegment {
                id: e.id.to_string(),
                volume: e.meta_volume,
                dir: dir.or_else(|| vols.get(&e.meta_volume).map(|v| v.dir)),
                reason,
                cloud_copy: e.flags & FLAG_UPLOADED != 0,
            });
        }
        out
    }
}

impl Store {
    /// Segments whose local copy cannot be reached (disk failed, volume missing). Those with
    /// `cloud_copy` are still readable, from the cloud tier. Evicted segments are listed too
    /// when their metadata volume is gone; their bytes were only in the cloud anyway.
    pub fn lost_segments(&self) -> Vec<LostSegment> {
        self.inner.lost_segments()
    }
}
