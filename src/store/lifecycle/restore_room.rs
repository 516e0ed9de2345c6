//! Room for a restore: a restore (`footage restore`, the restore queue, prefetch by case) may
//! only write into a data dir that stays at or below policy.toml's `disk.high_watermark`
//! afterwards, the same line the disk job evicts down to (retention/pressure.rs).
//!
//! Without this a pinned large case could fill a data dir and block new evidence, and an
//! unpinned restore past the watermark would only be evicted again by the next disk check.
//!
//! Invariants: the check runs before a byte is fetched or written, and a refused restore
//! changes nothing; it counts every byte the restore will append (payload, chunk record
//! headers, the sealing overhead of an encrypted store, the commit record); a data dir whose
//! size cannot be read (statvfs failing) is not chosen; only available dirs are considered,
//! the one an ingest would pick first.

use crate::error::{Error, Result};
use crate::format::chunk::ChunkForm;
use crate::format::record::HEADER_LEN;
use crate::store::stats::disk_space;
use crate::store::Inner;

/// Bytes allowed for the restored copy's commit record (metadata, labels and one extent per
/// chunk are counted apart): a generous bound, so the estimate never falls short.
const COMMIT_RECORD_ALLOWANCE: u64 = 64 * 1024;
/// Bytes of one extent in a commit record (volume id, offset, length).
const EXTENT_BYTES: u64 = 16;

/// The free space and size of a data dir, as the check sees them.
pub(crate) type DiskSpace = (u64, u64);

impl Inner {
    /// Bytes a restore of a `bytes`-long segment appends to a volume (chunks of the store's
    /// `chunk_size`, as the ingest writer cuts them).
    pub(crate) fn restore_footprint(&self, bytes: u64) -> u64 {
        // A restore writes chunks as an ingest does: sealed, or with block CRC trailers.
        let form = ChunkForm::of(true, self.crypt.is_some());
        let capacity = form.capacity(u64::from(self.config.chunk_size));
        let chunks = bytes.div_ceil(capacity.max(1));
        let extra = u64::from(form.extra(capacity as u32));
        bytes + chunks * (HEADER_LEN + extra + EXTENT_BYTES) + HEADER_LEN + COMMIT_RECORD_ALLOWANCE
    }

    /// The data dir a restore of segment `id` needing `needed` bytes writes to: the first
    /// available one (in the order an ingest picks them) that stays at or below `watermark`
    /// (a fraction of its file system's size) afterwards. Refused with [`Error::NoRoom`]
    /// when none does.
    pub(crate) fn room_for_restore(&self, id: u64, needed: u64, watermark: f64) -> Result<u16> {
        self.room_for_restore_in(id, needed, watermark, &|dir| {
            self.dirs
                .iter()
                .find(|d| d.index == dir)
                .and_then(|d| disk_space(&d.path))
        })
    }

    /// [`Inner::room_for_restore`] with the disk sizes from `space` (tests give their own).
    pub(crate) fn room_for_restore_in(
        &self,
        id: u64,
        needed: u64,
        watermark: f64,
        space: &dyn Fn(u16) -> Option<DiskSpace>,
    ) -> Result<u16> {
        let first = self.pick_dir()?;
        let n = self.dirs.len();
        let start = self.dirs.iter().position(|d| d.index == first).unwrap_or(0);
        // The most room any dir has below its watermark, for the error.
        let mut best: Option<(u64, u16)> = None;
        for k in 0..n {
            let Some(d) = self.dirs.get((start + k) % n) else {
                continue;
            };
            if d.failed.lock().is_some() {
                continue;
            }
            let Some((free, total)) = space(d.index) else {
                continue;
            };
            let room = headroom(free, total, watermark);
            if room >= needed {
                return Ok(d.index);
            }
            if best.is_none_or(|(r, _)| room > r) {
                best = Some((room, d.index));
            }
        }
        let (room, dir) = best.unwrap_or((0, first));
        let path = self
            .dirs
            .iter()
            .find(|d| d.index == dir)
            .map(|d| d.path.clone())
            .unwrap_or_default();
        Err(Error::NoRoom {
            segment: id,
            needed,
            room,
            path,
            watermark_pct: (watermark * 100.0).round() as u32,
        })
    }
}

/// Bytes that can still be written to a file system of `total` bytes with `free` free before
/// its usage passes `watermark` (usage counts every byte not free to this user, as the disk
/// job does).
pub(crate) fn headroom(free: u64, total: u64, watermark: f64) -> u64 {
    let used = total.saturating_sub(free);
    let limit = (watermark.clamp(0.0, 1.0) * total as f64) as u64;
    limit.saturating_sub(used).min(free)
}

#[cfg(test)]
mod tests {
    use super::headroom;
    use crate::config::StoreOptions;
    use crate::error::Error;
    use crate::Store;

    #[test]
    fn headroom_is_the_room_below_the_watermark_and_never_more_than_free() {
        // 1000-byte disk, 300 used: 600 more at 90 %, none at 20 %, 700 (all free) at 100 %.
        assert_eq!(headroom(700, 1000, 0.9), 600);
        assert_eq!(headroom(700, 1000, 0.2), 0);
        assert_eq!(headroom(700, 1000, 1.0), 700);
        // statvfs's "available" can be below total - used (reserved blocks): never above it.
        assert_eq!(headroom(50, 1000, 1.0), 50);
    }

    #[test]
    fn a_restore_that_would_pass_the_watermark_is_refused_naming_what_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with(dir.path(), &StoreOptions::default()).unwrap();
        let inner = &store.inner;
        let disk = |free: u64| move |_dir: u16| Some((free, 1_000_000u64));
        // 100 000 bytes used of 1 000 000; the watermark at 50 % leaves 400 000.
        assert_eq!(
            inner
                .room_for_restore_in(7, 400_000, 0.5, &disk(900_000))
                .unwrap(),
            0
        );
        let e = inner
            .room_for_restore_in(7, 400_001, 0.5, &disk(900_000))
            .unwrap_err();
        match &e {
            Error::NoRoom {
                segment,
                needed,
                room,
                watermark_pct,
                ..
            } => assert_eq!(
                (*segment, *needed, *room, *watermark_pct),
                (7, 400_001, 400_000, 50)
            ),
            other => panic!("not NoRoom: {other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains("400001") && text.contains("high_watermark"),
            "{text}"
        );
        // A disk whose size cannot be read is never chosen.
        assert!(inner.room_for_restore_in(7, 1, 1.0, &|_| None).is_err());
    }

    #[test]
    fn the_footprint_counts_headers_and_the_commit_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with(dir.path(), &StoreOptions::default()).unwrap();
        let f = store.inner.restore_footprint(10 << 20);
        assert!(f > 10 << 20, "{f}");
        assert!(f < (10 << 20) + (1 << 20), "{f}");
    }
}
