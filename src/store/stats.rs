//! `stats`: segment and byte counts, volumes, and per-disk usage and free space.
//!
//! Invariant: stats reads file metadata, the catalog and the scrub's findings only, never
//! volume contents.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use super::Store;
use crate::error::Result;

/// One volume file, as [`Store::stats`] lists it.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeStats {
    /// Volume number (its file is `vol-<id>.ftv`).
    pub id: u32,
    /// Index of the data dir holding it (in `footage.toml`'s `data_dirs`).
    pub dir: u16,
    /// Length of the file.
    pub bytes: u64,
    /// Bytes the file occupies on disk (holes punched by eviction and deletion excluded).
    pub allocated_bytes: u64,
    /// Chunk bytes of live local segments stored in it.
    pub live_bytes: u64,
    /// Live segments whose commit record it holds.
    pub live_commits: u32,
    /// `allocated_bytes` minus what compaction would keep (live chunks, a block per live
    /// commit record, the header): the space `footage compact` would give back.
    pub dead_bytes: u64,
    /// Whether it is sealed (full: nothing more is appended).
    pub sealed: bool,
    /// The UTC day of the footage it holds (YYYY-MM-DD).
    pub footage_day: String,
}

/// One data dir, as [`Store::stats`] lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DiskStats {
    /// The directory.
    pub path: String,
    /// Whether it can be read now (false: the disk or mount is gone).
    pub available: bool,
    /// Why it cannot be read, if it cannot.
    pub error: Option<String>,
    /// Volumes in it.
    pub volumes: usize,
    /// Bytes of its volume files (their lengths).
    pub volume_bytes: u64,
    /// Free bytes on its filesystem (None if that cannot be asked).
    pub free_bytes: Option<u64>,
    /// Size of its filesystem, bytes (None if that cannot be asked).
    pub total_bytes: Option<u64>,
}

/// A store's figures ([`Store::stats`]): segments, bytes, disks, volumes, scrub, pins, restores and
/// cache.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// `"real"`, or `"simulated"` for a store created with a simulated clock (its retention
    /// may have run at pretend times).
    pub clock: &'static str,
    /// Segments in the catalog (local, evicted or lost).
    pub segments: usize,
    /// Video bytes of those segments.
    pub bytes: u64,
    /// Volume files.
    pub volumes: usize,
    /// Segments whose local copy cannot be reached (disk failed, volume missing).
    pub unavailable_segments: usize,
    /// Of those, the ones with no cloud copy either: unreadable until the disk is back.
    pub unavailable_without_cloud_copy: usize,
    /// At most 1000 of the unavailable segments, by id.
    pub lost: Vec<super::LostSegment>,
    /// Known corrupt segments and the background scrub's place.
    pub scrub: super::ScrubSummary,
    /// Segments kept local by a pin in force now (store/pin.rs).
    pub pins: PinStats,
    /// The restore queue and restore counters (store/restore_queue.rs).
    pub restores: super::RestoreStats,
    /// Estimated memory the catalog and its indexes hold, bytes.
    pub catalog_memory_bytes: usize,
    /// Every data dir.
    pub disks: Vec<DiskStats>,
    /// Every volume.
    pub volume_list: Vec<VolumeStats>,
    /// What the open that loaded the store found and did.
    pub open: super::OpenReport,
    /// The read cache of evicted footage (`[cache]`); absent when there is none.
    pub cache: Option<crate::cache::CacheStats>,
}

/// Pins in force, as `stats` shows them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PinStats {
    /// Pinned segments.
    pub segments: usize,
    /// Their video bytes.
    pub bytes: u64,
    /// Of them, the ones still evicted (queued for restore, or failing to restore).
    pub evicted: usize,
    /// The pinned segments (at most 100), id and pin end.
    pub list: Vec<PinnedSegment>,
}

/// One pinned segment in `stats`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PinnedSegment {
    /// The segment id (decimal).
    pub id: String,
    /// When the pin ends (RFC 3339, UTC), or `indefinitely`.
    pub until: String,
    /// Whether its bytes are on the local disks now (false: still evicted).
    pub local: bool,
}

/// (free, total) bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    Some((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}

impl Store {
    /// The pins in force now.
    pub fn pin_stats(&self) -> PinStats {
        let pinned = self.pinned(self.inner.now_us());
        PinStats {
            segments: pinned.len(),
            bytes: pinned.iter().map(|p| p.2).sum(),
            evicted: pinned.iter().filter(|p| !p.3).count(),
            list: pinned
                .iter()
                .take(100)
                .map(|&(id, until, _, local)| PinnedSegment {
                    id: id.to_string(),
                    until: super::lifecycle::pin::show_pin(until),
                    local,
                })
                .collect(),
        }
    }

    /// The store's figures now (see [`Stats`]); reads the catalog and asks each data dir's
    /// filesystem for its free space.
    pub fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let live = inner.catalog.read().volume_live.clone();
        let mut volume_list: Vec<VolumeStats> = inner
            .volumes
            .read()
            .values()
            .map(|v| {
                let (live_bytes, live_commits) = live.get(&v.id).copied().unwrap_or((0, 0));
                let occ = super::lifecycle::compact::Occupancy {
                    allocated: v.allocated(),
                    live_bytes,
                    live_commits,
                };
                VolumeStats {
                    id: v.id,
                    dir: v.dir,
                    bytes: v.len().unwrap_or(0),
                    allocated_bytes: occ.allocated,
                    live_bytes,
                    live_commits,
                    dead_bytes: occ.dead(),
                    sealed: v.is_mapped(),
                    footage_day: chrono::DateTime::from_timestamp(
                        v.header.age_day.saturating_mul(86_400),
                        0,
                    )
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                }
            })
            .collect();
        volume_list.sort_by_key(|v| v.id);
        inner.probe_dirs();
        let disks = inner
            .dirs
            .iter()
            .map(|d| {
                let failed = d.failed.lock().clone();
                let mine: Vec<&VolumeStats> =
                    volume_list.iter().filter(|v| v.dir == d.index).collect();
                let space = disk_space(&d.path);
                DiskStats {
                    path: d.path.display().to_string(),
                    available: failed.is_none(),
                    error: failed,
                    volumes: mine.len(),
                    volume_bytes: mine.iter().map(|v| v.bytes).sum(),
                    free_bytes: space.map(|s| s.0),
                    total_bytes: space.map(|s| s.1),
                }
            })
            .collect();
        let (segments, bytes) = {
            let cat = inner.catalog.read();
            (cat.len(), cat.total_bytes)
        };
        let mut lost = inner.lost_segments();
        let unavailable = lost.len();
        let without_cloud = lost.iter().filter(|l| !l.cloud_copy).count();
        lost.truncate(super::integrity::verify::SUMMARY_LIST);
        Ok(Stats {
            clock: self.inner.config.clock_name(),
            segments,
            bytes,
            volumes: volume_list.len(),
            unavailable_segments: unavailable,
            unavailable_without_cloud_copy: without_cloud,
            lost,
            scrub: self.scrub_summary(),
            pins: self.pin_stats(),
            restores: self.restore_stats(),
            catalog_memory_bytes: self.catalog_heap_bytes(),
            disks,
            volume_list,
            open: inner.report.clone(),
            cache: inner.cache.as_ref().map(|c| c.stats()),
        })
    }
}
