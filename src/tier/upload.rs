//! Uploading a segment: parts sent (or resumed when present with the right size), every part
//! read back and proven to hold the stored bytes meant for it, then `meta.json` written last.
//!
//! The bytes move once each way, overlapped: this thread reads the local copy (verified) in
//! 8 MiB pieces, seals them in an encrypted store and takes the CRC32 of every stored 1 MiB
//! block from the very buffer it hands to the object store, while a thread of its own computes
//! the SHA-256 of the plaintext (the same buffers) and the tier's runtime puts up to
//! [`PUT_IN_FLIGHT`] pieces at a time; part k is completed and read back
//! (`readback.rs`) while part k+1 is read and sent.
//!
//! Invariants:
//! - an upload is complete only once (1) the SHA-256 of every plaintext byte sent (or, for
//!   parts resumed, read locally) equals the one recorded at ingest, (2) every part was read
//!   back and each stored block's length and CRC32 equal those of the bytes hashed (resumed
//!   parts of an encrypted store: each block opens to exactly the local bytes), and (3)
//!   `meta.json` was written; only then may local bytes be dropped (the caller records
//!   `Uploaded` after this returns);
//! - the block CRC32 list kept locally (`local_crc.rs`) is written durably after (1) and
//!   before `meta.json`; it may be written while the last part is still being read back (its
//!   CRCs are those of bytes already hashed; a failed read-back leaves a list for a segment not
//!   uploaded, which the next attempt rewrites and nothing reads);
//! - a part proven different from what was sent is deleted (`meta.json` first), so the next
//!   attempt sends it again rather than resume on it.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::util::Phases;

use super::readback::{read_back, Expected, PartCheck};
use super::CloudMeta;
use super::{cloud, hex, local_crc, Tier, BLOCK_SIZE, PART_SIZE, UPLOAD_CHUNK};

/// Pieces of a part being put at once, as object_store's own `WriteMultipart` is used with
/// (`wait_for_capacity(4)`): enough to keep a cloud connection busy, 32 MiB of memory.
const PUT_IN_FLIGHT: usize = 4;

/// Parts sent but not yet read back that the upload runs ahead of: part k is completed and
/// read back while part k+1 is read and sent (an encrypted part found present keeps its 64
/// MiB of local plaintext until it is compared).
const PARTS_IN_FLIGHT: usize = 2;

/// Pieces queued for the SHA-256 thread (8 MiB each).
const SHA_QUEUE: usize = 4;

impl Tier {
    /// Uploads segment `meta.id` (resuming a previous attempt), verifies it and writes its
    /// `meta.json`. `read` returns verified local bytes of the segment; `progress` gets bytes
    /// uploaded or skipped. In an encrypted store each 1 MiB block is sealed before upload.
    pub fn upload(
        &self,
        mut meta: CloudMeta,
        read: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CloudMeta> {
        let id = meta.id;
        let mut clock = Phases::start();
        // A `meta.json` this process read or wrote for an earlier attempt is not the copy
        // being made (a part proven wrong deletes it).
        self.metas.lock().remove(&id);
        meta.sealed = self.crypt.is_some();
        meta.part_size = PART_SIZE;
        meta.block_size = BLOCK_SIZE;
        let parts = meta.bytes.div_ceil(PART_SIZE).max(1);
        let sha = ShaThread::start()?;
        let mut flight = InFlight::default();
        for part in 0..parts {
            while flight.parts.len() >= PARTS_IN_FLIGHT {
                flight.wait_oldest(&self.rt)?;
            }
            let (task, known) = self.send_part(&meta, part, read, progress, &sha)?;
            flight.parts.push_back((task, known));
        }
        let (digest, hashed) = sha.finish();
        clock.mark("send");
        if hashed != meta.bytes || hex(&digest) != meta.sha256 {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: "local bytes do not match the SHA-256 recorded at ingest; not uploaded"
                    .into(),
            });
        }
        // The list the bucket's meta.json will be checked against, durable before meta.json
        // (and so before the `Uploaded` record that eviction requires). When every CRC is
        // known already, written while the last parts are still read back.
        let early = flight.all_known();
        if early {
            meta.block_crc32 = flight.known_crcs();
            self.write_local_crcs(&meta)?;
            clock.mark("local_crcs");
        }
        flight.drain(&self.rt)?;
        clock.mark("read_back");
        crate::fail::point("upload.after_parts");
        if !early {
            meta.block_crc32 = std::mem::take(&mut flight.crcs);
            self.write_local_crcs(&meta)?;
            clock.mark("local_crcs");
        } else if flight.crcs != meta.block_crc32 {
            // Cannot happen (a read-back returns the CRCs it was given, or fails); checked
            // because the list was written from the expected ones.
            return Err(Error::Cloud(format!(
                "segment {id}: the parts read back do not give the CRC32s the upload listed"
            )));
        }
        let json = self.encode_meta(&meta)?;
        let path = self.meta_path(id);
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(json)))
            .map_err(cloud(format!("writing {path}")))?;
        clock.mark("meta");
        crate::fail::point("upload.after_meta");
        self.metas.lock().insert(id, Arc::new(meta.clone()));
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                segment = id,
                bytes = meta.bytes,
                total_ms = clock.total_ms(),
                phases = %clock,
                "upload timing"
            );
        }
        Ok(meta)
    }

    fn write_local_crcs(&self, meta: &CloudMeta) -> Result<()> {
        if let Some(dir) = &self.crc_dir {
            local_crc::write(dir, meta)?;
        }
        crate::fail::point("upload.after_local_crcs");
        Ok(())
    }

    /// Reads part `part` locally (hashing it) and sends it, unless it is present with the
    /// right size; returns the task that completes and reads it back, and the CRC32s of its
    /// stored blocks when they are known before the read-back.
    fn send_part(
        &self,
        meta: &CloudMeta,
        part: u64,
        read: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
        sha: &ShaThread,
    ) -> Result<(PartTask, Option<Vec<u32>>)> {
        let id = meta.id;
        let start = part * PART_SIZE;
        let len = (meta.bytes - start).min(PART_SIZE);
        let overhead = Tier::stored_block(meta.sealed, 0);
        let stored_block = (BLOCK_SIZE + overhead) as usize;
        let path = self.part_path(id, part);
        let check = |expected| PartCheck {
            path: path.clone(),
            meta_path: self.meta_path(id),
            plain_len: len,
            overhead,
            expected,
        };
        let stored_len = len + overhead * len.div_ceil(BLOCK_SIZE);
        let present = self
            .rt
            .block_on(self.store.head(&path))
            .is_ok_and(|m| m.size == stored_len);
        let mut local = |off: u64, n: u64| -> Result<Bytes> {
            let data = read(off, n as usize)?;
            if data.len() as u64 != n {
                return Err(Error::Invalid(format!(
                    "segment {id}: short local read at {off}"
                )));
            }
            let data = Bytes::from(data);
            sha.send(data.clone())?;
            Ok(data)
        };
        let pieces = (start..start + len)
            .step_by(UPLOAD_CHUNK)
            .map(|off| (off, (start + len - off).min(UPLOAD_CHUNK as u64)));
        if present {
            // Sent by an earlier attempt: its bytes were not seen in this run, so the
            // read-back compares them with the local copy's stored form.
            let mut crcs = Vec::new();
            let mut plain = Vec::new();
            for (off, n) in pieces {
                let data = local(off, n)?;
                match &self.crypt {
                    None => crcs.extend(data.chunks(BLOCK_SIZE as usize).map(crc32fast::hash)),
                    Some(_) => plain.push(data),
                }
                progress(n);
            }
            let (expected, known) = match &self.crypt {
                None => (Expected::Crcs(crcs.clone()), Some(crcs)),
                Some(c) => (
                    Expected::Opens {
                        cipher: Box::new(c.segment(id)),
                        first_block: start / BLOCK_SIZE,
                        plain,
                    },
                    None,
                ),
            };
            let task = self
                .rt
                .spawn(read_back(Arc::clone(&self.store), check(expected)));
            return Ok((task, known));
        }
        if crate::fail::error("cloud.put") {
            return Err(Error::Cloud(format!("uploading {path}: injected failure")));
        }
        let cipher = self.crypt.as_ref().map(|c| c.segment(id));
        let mut upload = self
            .rt
            .block_on(self.store.put_multipart(&path))
            .map_err(cloud(format!("starting upload of {path}")))?;
        let mut puts: VecDeque<JoinHandle<object_store::Result<()>>> = VecDeque::new();
        let mut crcs = Vec::with_capacity(len.div_ceil(BLOCK_SIZE) as usize);
        let sent = (|| -> Result<()> {
            for (off, n) in pieces {
                let plain = local(off, n)?;
                let stored = match &cipher {
                    None => plain,
                    Some(c) => {
                        let mut out =
                            Vec::with_capacity((n + overhead * n.div_ceil(BLOCK_SIZE)) as usize);
                        for (i, b) in plain.chunks(BLOCK_SIZE as usize).enumerate() {
                            let block = off / BLOCK_SIZE + i as u64;
                            out.extend_from_slice(&c.seal(crate::crypt::DOMAIN_BLOCK, block, &[b]));
                        }
                        Bytes::from(out)
                    }
                };
                // The CRC32s the read-back must find: of the very bytes handed over.
                crcs.extend(stored.chunks(stored_block).map(crc32fast::hash));
                while puts.len() >= PUT_IN_FLIGHT {
                    if let Some(p) = puts.pop_front() {
                        joined(self.rt.block_on(p), &path)?;
                    }
                }
                let _rt = self.rt.enter();
                puts.push_back(self.rt.spawn(upload.put_part(PutPayload::from(stored))));
                progress(n);
            }
            Ok(())
        })();
        if let Err(e) = sent {
            for p in &puts {
                p.abort();
            }
            let _ = self.rt.block_on(upload.abort());
            return Err(e);
        }
        let store = Arc::clone(&self.store);
        let check = check(Expected::Crcs(crcs.clone()));
        let task = self.rt.spawn(async move {
            let mut failed = None;
            for p in puts {
                if let Err(e) = joined(p.await, &check.path) {
                    failed.get_or_insert(e);
                }
            }
            if let Some(e) = failed {
                let _ = upload.abort().await;
                return Err(e);
            }
            upload
                .complete()
                .await
                .map_err(cloud(format!("finishing upload of {}", check.path)))?;
            read_back(store, check).await
        });
        Ok((task, Some(crcs)))
    }
}

/// A part's completion and read-back, giving the CRC32 of every stored block.
type PartTask = JoinHandle<Result<Vec<u32>>>;

/// The outcome of one spawned put of a piece.
fn joined(
    r: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    path: &object_store::path::Path,
) -> Result<()> {
    match r {
        Ok(r) => r.map_err(cloud(format!("uploading {path}"))),
        Err(e) => Err(cloud(format!("uploading {path}"))(e)),
    }
}

/// The parts sent and not yet proven, in order; those still running are aborted when an
/// upload gives up.
#[derive(Default)]
struct InFlight {
    parts: VecDeque<(PartTask, Option<Vec<u32>>)>,
    /// CRC32s of the parts proven so far, in order.
    crcs: Vec<u32>,
    /// Whether a proven part's CRC32s were not known before its read-back.
    unknown_seen: bool,
}

impl InFlight {
    fn wait_oldest(&mut self, rt: &tokio::runtime::Runtime) -> Result<()> {
        let Some((task, known)) = self.parts.pop_front() else {
            return Ok(());
        };
        let crcs = rt
            .block_on(task)
            .map_err(cloud("reading back a part"))??;
        self.unknown_seen |= known.is_none();
        self.crcs.extend(crcs);
        Ok(())
    }

    fn drain(&mut self, rt: &tokio::runtime::Runtime) -> Result<()> {
        while !self.parts.is_empty() {
            self.wait_oldest(rt)?;
        }
        Ok(())
    }

    /// Whether every part's CRC32s are known before its read-back ends.
    fn all_known(&self) -> bool {
        !self.unknown_seen && self.parts.iter().all(|(_, k)| k.is_some())
    }

    /// The CRC32s of all parts, as known before their read-backs (see `all_known`).
    fn known_crcs(&self) -> Vec<u32> {
        let mut out = self.crcs.clone();
        for (_, k) in &self.parts {
            out.extend(k.iter().flatten());
        }
        out
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        for (task, _) in &self.parts {
            task.abort();
        }
    }
}

/// The SHA-256 of the plaintext, computed on a thread of its own from the buffers sent.
struct ShaThread {
    tx: Option<SyncSender<Bytes>>,
    thread: Option<std::thread::JoinHandle<([u8; 32], u64)>>,
}

impl ShaThread {
    fn start() -> Result<ShaThread> {
        let (tx, rx) = sync_channel::<Bytes>(SHA_QUEUE);
        let thread = std::thread::Builder::new()
            .name("footage-upload-sha".into())
            .spawn(move || {
                let mut h = Sha256::new();
                let mut n = 0u64;
                for piece in rx {
                    h.update(&piece);
                    n += piece.len() as u64;
                }
                (h.finalize().into(), n)
            })
            .map_err(|e| Error::Cloud(format!("cannot start the upload's SHA-256 thread: {e}")))?;
        Ok(ShaThread {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, piece: Bytes) -> Result<()> {
        match &self.tx {
            Some(tx) if tx.send(piece).is_ok() => Ok(()),
            _ => Err(Error::Cloud("the upload's SHA-256 thread stopped".into())),
        }
    }

    /// The SHA-256 of everything sent, and its length.
    fn finish(mut self) -> ([u8; 32], u64) {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => ([0; 32], 0),
        }
    }
}

impl Drop for ShaThread {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
