//! Writing catalog checkpoints (FORMAT.md §9): one at a time, every `checkpoint_every` commits
//! and on demand, the newest two kept.
//!
//! Invariant: a checkpoint's failure never fails the commit that triggered it; it is kept for
//! `last_checkpoint_error` and tried again.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::catalog::checkpoint;
use crate::error::{Error, Result};
use crate::log::writer::VolumeWriter;

use super::Inner;

impl Inner {
    /// Writes a checkpoint. Commits pause while the catalog is serialised (not while it is
    /// compressed and written).
    pub fn checkpoint(&self) -> Result<PathBuf> {
        self.writable("a checkpoint")?;
        let mut seq = self.checkpoint_seq.lock();
        let t0 = std::time::Instant::now();
        let mut to_sync = Vec::new();
        let (body, tracks_len, (tracks_off, tracks_bytes), audited) = {
            let _gate = self.gate.write();
            // Every commit this checkpoint covers has appended its ingest audit entry (a
            // commit holds the gate until it has): those entries are made durable before the
            // checkpoint is written, since recovery rewrites lost ones only for the commit
            // records it replays (FORMAT §11).
            let audited = self.audit.appended();
            let writers: Vec<Arc<VolumeWriter>> = self.writers.lock().values().cloned().collect();
            let mut cat = self.catalog.write();
            crate::fail::hook("checkpoint.writers_listed");
            for w in writers {
                // A writer sealed since it was listed (a rotation or `writer_for` runs beside
                // the checkpoint, which holds no writer lock): its end lies past the seal
                // record, and the catalog may still call the volume active. Recorded as its
                // replay start, the next open would scan from beyond the seal, take the volume
                // for active and seal it a second time. Its replay start stays where the last
                // checkpoint put it, before the seal, as for a writer rotated out before the
                // list was taken; `seal_writer` records it sealed.
                let Some(end) = w.active_end() else {
                    continue;
                };
                if let Some(v) = cat.volumes.get_mut(&w.volume.id) {
                    v.replay_from = end;
                }
                to_sync.push((w, end));
            }
            cat.next_segment_id = cat
                .next_segment_id
                .max(self.next_segment_id.load(Ordering::SeqCst));
            cat.next_lsn = cat.next_lsn.max(self.next_lsn.load(Ordering::SeqCst));
            cat.next_volume_id = cat.next_volume_id.max(*self.next_volume_id.lock());
            self.since_checkpoint.store(0, Ordering::Relaxed);
            cat.compact();
            // Queries go on while the catalog is serialised; commits wait at the gate.
            let cat = parking_lot::RwLockWriteGuard::downgrade(cat);
            (
                checkpoint::encode_body(&cat, &self.store_id),
                cat.index.tracks.len(),
                cat.index.tracks.pending(),
                audited,
            )
        };
        let t_body = t0.elapsed();
        // Replay must never start beyond what a power cut can leave: make it durable first,
        // and the track bytes the checkpoint names too.
        for (w, end) in to_sync {
            w.sync_to(end)?;
        }
        self.audit.sync_to(audited)?;
        crate::fail::point("checkpoint.log_durable");
        let t_log = t0.elapsed();
        let track_writer = self.catalog.read().index.tracks.writer()?;
        track_writer.write(tracks_off, &tracks_bytes)?;
        crate::fail::point("checkpoint.tracks_written");
        let t_tracks = t0.elapsed();
        *seq += 1;
        let file = checkpoint::encode_file(&body, *seq, self.now_us())
            .map_err(|e| Error::io(&self.root, e))?;
        let t_compress = t0.elapsed();
        let path = checkpoint::write(&self.root.join("catalog"), *seq, &file)?;
        crate::fail::point("checkpoint.written");
        self.catalog.write().index.tracks.advance(tracks_len)?;
        tracing::debug!(
            body_ms = t_body.as_secs_f64() * 1e3,
            log_sync_ms = (t_log - t_body).as_secs_f64() * 1e3,
            tracks_ms = (t_tracks - t_log).as_secs_f64() * 1e3,
            track_bytes = tracks_bytes.len(),
            compress_ms = (t_compress - t_tracks).as_secs_f64() * 1e3,
            write_ms = (t0.elapsed() - t_compress).as_secs_f64() * 1e3,
            file_bytes = file.len(),
            "checkpoint written"
        );
        Ok(path)
    }
    /// Called after each commit: writes a checkpoint every `checkpoint_every` commits.
    ///
    /// A failure does not fail the caller: its commit or change is already durable and in the
    /// log, which a checkpoint only shortcuts, so failing it would tell a dock that footage
    /// stored for good was not stored (a lost acknowledgement). The error is kept for
    /// [`crate::Store::last_checkpoint_error`], the count is kept so the next commit tries
    /// again, and `close` reports it if it still fails then.
    pub fn maybe_checkpoint(&self) {
        let n = self.since_checkpoint.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.config.checkpoint_every && self.checkpoint_seq.try_lock().is_some() {
            match self.checkpoint() {
                Ok(_) => *self.checkpoint_error.lock() = None,
                Err(e) => {
                    self.since_checkpoint.fetch_add(n, Ordering::Relaxed);
                    *self.checkpoint_error.lock() = Some(e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
