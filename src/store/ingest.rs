//! Ingest: the streaming segment writer.
//!
//! Lifecycle of a segment: `begin` (validate metadata, pick a data dir, reserve an id) →
//! `write` (bytes are hashed and cut into chunk records of `chunk_size`, each appended to the
//! active volume for this dir and footage day) → `commit`: the last partial chunk is written,
//! every volume holding a chunk is fsynced up to it, the (device, SHA-256) pair is checked
//! against stored segments (a retried dock gets the existing id back with `duplicate`), the
//! commit record is appended and fsynced, and only then is the segment in the catalog;
//! finally an `ingest` entry is made durable in the audit log and the commit returns.
//!
//! Invariants: a commit record is never written before the chunks it names are durable; a
//! writer that is dropped without `commit` leaves only dead chunks, never a visible segment;
//! a commit is acknowledged only once its audit entry is durable (if that fails, the segment
//! is stored but the commit reports the error: a retry gets it back as a duplicate and is
//! recorded then).

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{hex, Inner};
use crate::error::{Error, Result};
use crate::format::commit::{CommitRecord, Extent};
use crate::format::record::{chunk_payload_capacity, record_end, Kind};
use crate::log::writer::{Appended, VolumeWriter};
use crate::meta::SegmentMeta;

/// What `commit` returns: the segment's id and hash, and whether it was already stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    pub id: u64,
    #[serde(serialize_with = "ser_hex")]
    pub sha256: [u8; 32],
    pub bytes: u64,
    pub duplicate: bool,
}

fn ser_hex<S: serde::Serializer>(v: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

impl Committed {
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

pub struct SegmentWriter {
    inner: Arc<Inner>,
    /// Who is ingesting, for the audit log.
    actor: Arc<str>,
    id: u64,
    meta: SegmentMeta,
    dir: u16,
    day: i64,
    capacity: usize,
    buf: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    extents: Vec<Extent>,
    /// Volumes written to, with the end of our last record in each.
    touched: Vec<(Arc<VolumeWriter>, u64)>,
}

impl SegmentWriter {
    pub(super) fn begin(
        inner: Arc<Inner>,
        mut meta: SegmentMeta,
        actor: Arc<str>,
    ) -> Result<SegmentWriter> {
        meta.normalize();
        meta.validate().map_err(Error::Invalid)?;
        let dir = inner.pick_dir()?;
        let id = inner.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let capacity = chunk_payload_capacity(u64::from(inner.config.chunk_size)) as usize;
        let day = Inner::day_of(meta.start_us);
        Ok(SegmentWriter {
            inner,
            actor,
            id,
            meta,
            dir,
            day,
            capacity,
            buf: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
            extents: Vec::new(),
            touched: Vec::new(),
        })
    }

    /// The id this segment will have if it is committed (and is not a duplicate).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends bytes to the segment.
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.capacity {
                // Whole chunks straight from the caller's buffer, without a copy.
                let (chunk, rest) = data.split_at(self.capacity);
                self.append_chunk(chunk)?;
                data = rest;
                continue;
            }
            if self.buf.capacity() < self.capacity {
                self.buf.reserve_exact(self.capacity - self.buf.len());
            }
            let n = (self.capacity - self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(n);
            self.buf.extend_from_slice(head);
            data = rest;
            if self.buf.len() == self.capacity {
                let chunk = std::mem::take(&mut self.buf);
                self.append_chunk(&chunk)?;
                self.buf = chunk;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Copies everything from a reader into the segment.
    pub fn copy_from(&mut self, r: &mut dyn Read) -> Result<u64> {
        let mut buf = vec![0u8; self.capacity];
        let mut total = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Io {
                        path: "<input>".into(),
                        source: e,
                    })
                }
            };
            self.write(buf.get(..n).unwrap_or_default())?;
            total += n as u64;
        }
    }

    fn append_chunk(&mut self, payload: &[u8]) -> Result<()> {
        let index = u32::try_from(self.extents.len())
            .map_err(|_| Error::Invalid("segment has too many chunks".into()))?;
        let (writer, pos) = self.append(Kind::Chunk, index, payload)?;
        self.extents.push(Extent {
            volume_id: writer.volume.id,
            offset: pos,
            len: payload.len() as u32,
        });
        Ok(())
    }

    /// Appends a record to the active volume for this segment, moving to a new volume when
    /// the current one is full.
    fn append(&mut self, kind: Kind, b: u32, payload: &[u8]) -> Result<(Arc<VolumeWriter>, u64)> {
        loop {
            let w = self.inner.writer_for(self.dir, self.day)?;
            match w.append(kind, self.id, b, payload)? {
                Appended::At(pos) => {
                    let end = record_end(pos, payload.len() as u32);
                    match self.touched.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &w)) {
                        Some(t) => t.1 = end,
                        None => self.touched.push((Arc::clone(&w), end)),
                    }
                    return Ok((w, pos));
                }
                Appended::Full => self.inner.rotate(self.dir, self.day, &w)?,
            }
        }
    }

    /// Makes the segment durable and visible; returns its id and SHA-256. If the same device
    /// already delivered the same bytes, returns that segment with `duplicate: true`.
    pub fn commit(mut self) -> Result<Committed> {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.append_chunk(&chunk)?;
        }
        // 1. The chunks are durable before any commit record can name them.
        for (w, end) in &self.touched {
            w.sync_to(*end)?;
        }
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        let inner = Arc::clone(&self.inner);
        let (officer, device) = (self.meta.officer.clone(), self.meta.device.clone());
        // 2. One commit per (device, hash) at a time; a retry waits for the first to finish.
        let key = crate::catalog::dedup_key(&self.meta.device, &sha256);
        {
            let mut p = inner.pending.lock();
            while p.contains(&key) {
                inner.pending_cv.wait(&mut p);
            }
            p.insert(key);
        }
        let result = self.commit_record(sha256);
        inner.pending.lock().remove(&key);
        inner.pending_cv.notify_all();
        let committed = result?;
        // 4. The chain of custody has it before the dock is told it is stored.
        let details = serde_json::json!({
            "sha256": committed.sha256_hex(),
            "bytes": committed.bytes,
            "duplicate": committed.duplicate,
            "officer": officer,
            "device": device,
        });
        inner.audit.append(
            &self.actor,
            "ingest",
            Some(committed.id),
            &details.to_string(),
            crate::audit::Durability::Durable,
        )?;
        if !committed.duplicate {
            inner.maybe_checkpoint()?;
        }
        Ok(committed)
    }

    fn commit_record(&mut self, sha256: [u8; 32]) -> Result<Committed> {
        let inner = Arc::clone(&self.inner);
        if let Some(id) = inner.find_duplicate(&self.meta.device, &sha256)? {
            return Ok(Committed {
                id,
                sha256,
                bytes: self.bytes,
                duplicate: true,
            });
        }
        let _gate = inner.gate.read();
        let rec = CommitRecord {
            segment_id: self.id,
            lsn: inner.next_lsn.fetch_add(1, Ordering::SeqCst),
            committed_us: inner.now_us(),
            bytes: self.bytes,
            sha256,
            chunk_capacity: self.capacity as u32,
            meta: std::mem::take(&mut self.meta),
            extents: std::mem::take(&mut self.extents),
        };
        let payload = rec.encode();
        let (w, pos) = self.append(Kind::Commit, 0, &payload)?;
        // 3. The commit record is durable before the segment is visible or acknowledged.
        w.sync_to(record_end(pos, payload.len() as u32))?;
        inner.catalog.write().apply_commit(&rec, w.volume.id, pos);
        Ok(Committed {
            id: self.id,
            sha256,
            bytes: self.bytes,
            duplicate: false,
        })
    }
}
