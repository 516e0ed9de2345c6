//! The store's volumes at run time: the active volume per (data dir, footage day), creating,
//! sealing and rotating volumes, volume ids, the choice of data dir for new footage, and
//! dropping sealed volumes no live segment needs (`Store::drop_empty_volumes`).
//!
//! Invariants: at most `MAX_ACTIVE_PER_DIR` active volumes per data dir; a volume id is taken
//! and listed in the catalog in one step (FORMAT.md §11, step 4); a failed data dir gets no
//! new segment.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fail;
use crate::format::change::Op;
use crate::format::volume::VolumeHeader;
use crate::log::volume::Volume;
use crate::log::writer::VolumeWriter;

use super::{Inner, Store, DAY_US, MAX_ACTIVE_PER_DIR};

impl Inner {
    pub fn volume(&self, id: u32) -> Option<Arc<Volume>> {
        self.volumes.read().get(&id).cloned()
    }
    /// The active writer for footage of `day` in data dir `dir`, creating a volume if needed.
    pub fn writer_for(&self, dir: u16, day: i64) -> Result<Arc<VolumeWriter>> {
        self.writable("appending to a volume")?;
        let mut writers = self.writers.lock();
        if let Some(w) = writers.get(&(dir, day)) {
            if !w.is_sealed() {
                return Ok(Arc::clone(w));
            }
        }
        // Keep few volumes open per dir: seal the one holding the oldest footage.
        let in_dir: Vec<(u16, i64)> = writers.keys().filter(|k| k.0 == dir).copied().collect();
        if in_dir.len() >= MAX_ACTIVE_PER_DIR {
            if let Some(oldest) = in_dir
                .iter()
                .filter(|k| k.1 != day)
                .min_by_key(|k| k.1)
                .copied()
            {
                if let Some(w) = writers.remove(&oldest) {
                    self.seal_writer(&w)?;
                }
            }
        }
        let w = Arc::new(self.create_volume(dir, day)?);
        writers.insert((dir, day), Arc::clone(&w));
        Ok(w)
    }
    fn create_volume(&self, dir: u16, day: i64) -> Result<VolumeWriter> {
        let d = self
            .dirs
            .get(usize::from(dir))
            .ok_or_else(|| Error::Invalid(format!("no data dir {dir}")))?;
        if let Some(why) = d.failed.lock().clone() {
            return Err(Error::Io {
                path: d.path.clone(),
                source: std::io::Error::other(why),
            });
        }
        let id = self.allocate_volume_id(dir);
        let header = VolumeHeader {
            volume_id: id,
            store_id: self.store_id,
            created_us: self.now_us(),
            chunk_size: self.config.chunk_size,
            age_day: day,
        };
        let path = d.path.join(crate::log::volume_file_name(id));
        let vol = match Volume::create(&path, dir, header) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                self.forget_volume(id);
                return Err(e);
            }
        };
        let end = crate::format::volume::VOLUME_HEADER_LEN as u64;
        self.volumes.write().insert(id, Arc::clone(&vol));
        Ok(VolumeWriter::new(vol, end, self.config.volume_size))
    }
    /// Takes the next volume id and lists the volume in the catalog (active, replay from its
    /// start) in the same step, under the catalog lock: so every checkpoint lists every volume
    /// with an id below its `next_volume_id` that was not retired (dropped or compacted
    /// away), and open can recognise a retired volume's leftover file by its id.
    pub(crate) fn allocate_volume_id(&self, dir: u16) -> u32 {
        let mut cat = self.catalog.write();
        let id = {
            let mut next = self.next_volume_id.lock();
            let id = *next;
            *next += 1;
            id
        };
        cat.volumes.insert(
            id,
            crate::catalog::VolumeState {
                id,
                dir,
                sealed: false,
                replay_from: 0,
            },
        );
        id
    }
    /// Takes back a volume id whose file was never made.
    pub(crate) fn forget_volume(&self, id: u32) {
        let mut cat = self.catalog.write();
        cat.volumes.remove(&id);
        cat.volume_live.remove(&id);
    }
    /// Seals a writer's volume and records it in the catalog.
    pub fn seal_writer(&self, w: &VolumeWriter) -> Result<()> {
        w.seal(self.now_us())?;
        crate::fail::point("volume.sealed");
        // Everything in a sealed volume is applied by the time a checkpoint can run (it
        // waits for in-flight commits), so replay can skip the whole volume.
        if let Some(v) = self.catalog.write().volumes.get_mut(&w.volume.id) {
            v.sealed = true;
            v.replay_from = w.end();
        }
        Ok(())
    }
    /// Seals a full writer and replaces it with a fresh volume for the same key.
    pub fn rotate(&self, dir: u16, day: i64, full: &Arc<VolumeWriter>) -> Result<()> {
        {
            let mut writers = self.writers.lock();
            if writers
                .get(&(dir, day))
                .is_some_and(|w| Arc::ptr_eq(w, full))
            {
                writers.remove(&(dir, day));
            }
        }
        self.seal_writer(full)
    }
    /// Picks the data dir for a new segment: round robin over the dirs that work.
    pub fn pick_dir(&self) -> Result<u16> {
        let n = self.dirs.len();
        let start = self.next_dir.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let d = &self.dirs[(start + k) % n];
            if d.failed.lock().is_none() {
                return Ok(d.index);
            }
        }
        Err(Error::Invalid(
            "every data dir is unavailable: check the disks listed in footage.toml".into(),
        ))
    }
    pub fn day_of(us: i64) -> i64 {
        us.div_euclid(DAY_US)
    }
}

impl Store {
    /// Removes sealed volumes that hold nothing a live segment needs; returns bytes freed.
    pub fn drop_empty_volumes(&self, actor: &str) -> Result<u64> {
        self.inner.writable("dropping empty volumes")?;
        let candidates: Vec<u32> = {
            // `writers` before `catalog` (the lock order).
            let active = self.inner.active_volume_ids();
            // Chunks of uploads and restores in progress live there.
            let pinned = self.inner.busy_volumes();
            let cat = self.inner.catalog.read();
            cat.volumes
                .values()
                .filter(|v| v.sealed && !active.contains(&v.id) && !pinned.contains(&v.id))
                .filter(|v| cat.volume_live.get(&v.id).is_none_or(|l| *l == (0, 0)))
                .map(|v| v.id)
                .collect()
        };
        let mut freed = 0;
        for vid in candidates {
            // Restate the newest changes of live segments that live in this volume.
            let restate: Vec<u64> = {
                let cat = self.inner.catalog.read();
                cat.states
                    .iter()
                    .filter(|(id, s)| s.volume == vid && cat.get(**id).is_some())
                    .map(|(id, _)| *id)
                    .collect()
            };
            {
                let _serial = self.inner.change_lock.lock();
                for id in restate {
                    let state = self.inner.current_state(id)?;
                    self.inner
                        .append_change(id, Op::Restate, "", state, Vec::new(), actor)?;
                }
            }
            fail::point("drop_volume.after_restate");
            // A checkpoint that no longer needs the volume must be durable before it goes; a
            // crash after it leaves a file that the next open recognises as retired (an id
            // below the checkpoint's `next_volume_id` that it does not list) and removes.
            let vol = self.inner.volume(vid);
            {
                let mut cat = self.inner.catalog.write();
                cat.volumes.remove(&vid);
                cat.volume_live.remove(&vid);
            }
            self.inner.checkpoint()?;
            fail::point("drop_volume.after_checkpoint");
            if let Some(vol) = vol {
                freed += vol.allocated();
                self.inner.volumes.write().remove(&vid);
                crate::fsio::remove_file(&vol.path).map_err(|e| Error::io(&vol.path, e))?;
                if let Some(dir) = vol.path.parent() {
                    crate::log::sync_dir(dir, "drop_volume.dir")?;
                }
            }
            fail::point("drop_volume.after_unlink");
        }
        Ok(freed)
    }
}
