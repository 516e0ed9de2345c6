//! One request's writing to a session (`UploadPatch`): bytes in, durable progress frames
//! every `PROGRESS_EVERY` bytes and at the end, the announced checksum checked, and the
//! segment committed by the request that completes it.
//!
//! Invariant: an offset is reported only once it is durable (chunks fdatasync'ed, then the
//! progress frame); after a write error the writer is dropped and the next request resumes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sha2::Sha256;

use super::checksum::{Running, UploadChecksum};
use super::{Session, UploadStatus, PROGRESS_EVERY};
use crate::error::{Error, Result};
use crate::format::upload::{encode_done, encode_progress, SessionDone};
use crate::store::ingest::SegmentWriter;
use crate::store::read::SegmentReader;
use crate::store::Store;

/// One request's writing to a session. Dropping it without [`UploadPatch::finish`] forgets
/// the bytes written since the last durable offset (they stay as dead chunks).
pub struct UploadPatch {
    pub(super) store: Store,
    pub(super) session: Arc<Session>,
    pub(super) writer: Option<SegmentWriter>,
    pub(super) actor: String,
    /// Offset after the bytes written so far by this request (not yet durable).
    pub(super) offset: u64,
    /// The checksum the request announced, the digest of its bytes so far, and the writer's
    /// hash state when it started (restored if the checksum does not match).
    pub(super) check: Option<(UploadChecksum, Running, Sha256)>,
}

impl Drop for UploadPatch {
    fn drop(&mut self) {
        self.session.busy.store(false, Ordering::Release);
    }
}

impl UploadPatch {
    /// Offset after the bytes written so far (durable only once `finish` returns).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.session.header.length - self.offset
    }

    /// Makes this request's bytes count only if their digest is `checksum` (tus `checksum`
    /// extension): until [`UploadPatch::finish`] has compared it, nothing of the request is
    /// recorded (no progress frame inside it either), so a mismatch or a crash leaves the
    /// durable offset where it was and the bytes written as dead chunks. Only before the
    /// first write.
    pub fn expect_checksum(&mut self, checksum: UploadChecksum) -> Result<()> {
        let durable = self.session.state.lock().offset;
        let w = self
            .writer
            .as_ref()
            .ok_or_else(|| Error::Invalid("the upload request already failed".into()))?;
        if self.offset != durable || self.check.is_some() {
            return Err(Error::Invalid(
                "a checksum is set before the request's first byte, once".into(),
            ));
        }
        let running = checksum.running();
        self.check = Some((checksum, running, w.hash_state()));
        Ok(())
    }

    /// Whether the request announced a checksum.
    pub fn has_checksum(&self) -> bool {
        self.check.is_some()
    }

    /// False when the request announced a checksum and its bytes so far do not have it.
    pub fn checksum_matches(&self) -> bool {
        self.check
            .as_ref()
            .is_none_or(|(c, running, _)| c.matches(running))
    }

    /// Ends the request without counting any of its bytes (a checksum that did not match):
    /// they stay as dead chunks, the durable state is untouched, and the next request goes on
    /// from it with the hash state this one started from. Returns the session's state.
    pub fn discard(mut self) -> UploadStatus {
        let session = Arc::clone(&self.session);
        let started = self.check.take().map(|(_, _, h)| h);
        self.writer = None;
        let kept = {
            let st = session.state.lock();
            match started {
                Some(h) if !st.gone => Some((h, st.offset, st.extents.clone())),
                _ => None,
            }
        };
        *session.writer.lock() = kept;
        session.status()
    }

    /// Appends bytes. Refuses bytes past the upload's length (nothing of them is written).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if data.len() as u64 > self.remaining() {
            return Err(Error::Invalid(format!(
                "the body goes past the upload's length ({} bytes)",
                self.session.header.length
            )));
        }
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Invalid("the upload request already failed".into()))?;
        match w.write(data) {
            Ok(()) => {
                self.offset += data.len() as u64;
            }
            Err(e) => {
                self.writer = None;
                return Err(e);
            }
        }
        if let Some((_, running, _)) = self.check.as_mut() {
            // Nothing of a checksummed request is recorded before its digest is compared.
            running.update(data);
            return Ok(());
        }
        if self.offset - self.session.state.lock().offset >= PROGRESS_EVERY {
            if let Err(e) = self.record_progress() {
                self.writer = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Inside a long request: makes the whole chunks written so far durable and records them,
    /// so that a HEAD after a crash (kill -9, power) reports them and the dock resends only
    /// the rest. The partial tail stays buffered; the response's offset comes from `finish`.
    fn record_progress(&mut self) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let durable = w.sync_whole_chunks()?;
        crate::fail::point("upload.chunks_durable");
        let session = Arc::clone(&self.session);
        let mut st = session.state.lock();
        if st.gone || durable <= st.offset {
            return Ok(());
        }
        let before = st.offset;
        let new = w
            .extents()
            .get(st.extents.len()..)
            .unwrap_or_default()
            .to_vec();
        let frame = encode_progress(durable, &new);
        session.append_frame(&mut st, &frame)?;
        crate::fail::point("upload.progress_durable");
        st.extents.extend(new);
        st.offset = durable;
        st.updated_us = crate::now_us();
        self.store
            .inner
            .uploads
            .bytes
            .fetch_add(durable - before, Ordering::Relaxed);
        Ok(())
    }

    /// Makes what was written durable and records it; completes the upload (commit, audit)
    /// when every byte has arrived. Returns the session's state, its offset durable.
    /// A request whose checksum does not match is refused here and counts nothing (see
    /// [`UploadPatch::discard`]).
    pub fn finish(mut self) -> Result<UploadStatus> {
        if !self.checksum_matches() {
            let algorithm = self
                .check
                .as_ref()
                .map_or("", |(c, _, _)| c.algorithm.name());
            self.discard();
            return Err(Error::Invalid(format!(
                "the request's bytes do not have the {algorithm} checksum it announced: none \
                 of them is counted"
            )));
        }
        let session = Arc::clone(&self.session);
        let Some(mut w) = self.writer.take() else {
            return Err(Error::Invalid("the upload request already failed".into()));
        };
        {
            let mut st = session.state.lock();
            if st.gone {
                return Err(Error::NotFound(format!("upload {}", session.id)));
            }
            let before = st.offset;
            if w.bytes() > before {
                w.persist_tail()?;
                crate::fail::point("upload.chunks_durable");
                let new = w
                    .extents()
                    .get(st.extents.len()..)
                    .unwrap_or_default()
                    .to_vec();
                let frame = encode_progress(w.bytes(), &new);
                session.append_frame(&mut st, &frame)?;
                crate::fail::point("upload.progress_durable");
                st.extents.extend(new);
                st.offset = w.bytes();
                st.updated_us = crate::now_us();
                self.store
                    .inner
                    .uploads
                    .bytes
                    .fetch_add(st.offset - before, Ordering::Relaxed);
            }
            if st.offset < session.header.length || st.done.is_some() {
                drop(st);
                *session.writer.lock() = w.suspend();
                return Ok(session.status());
            }
        }
        self.complete(w)?;
        Ok(session.status())
    }

    /// Commits the segment of a session whose every byte is durable.
    fn complete(&self, mut w: SegmentWriter) -> Result<()> {
        let session = &self.session;
        if !session.header.end_known {
            let reader = SegmentReader::over_extents(
                Arc::clone(&self.store.inner),
                session.header.segment_id,
                (w.capacity(), w.form()),
                w.extents().to_vec(),
            );
            let info = crate::input::mp4::mp4_info_reader(reader, session.header.length)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let Some(d) = info.and_then(|i| i.duration_us) else {
                return Err(Error::Invalid(
                    "the upload has no end time and is not an MP4 with a duration in its \
                     header: create it again with an `end` in Upload-Metadata"
                        .into(),
                ));
            };
            let meta = w.meta_mut();
            meta.end_us = meta.start_us.saturating_add(d);
        }
        let committed = w.commit()?;
        crate::fail::point("upload.committed");
        let done = SessionDone {
            segment_id: committed.id,
            sha256: committed.sha256,
            duplicate: committed.duplicate,
            completed_us: crate::now_us(),
        };
        {
            let mut st = session.state.lock();
            session.append_frame(&mut st, &encode_done(&done))?;
            st.done = Some(done);
            st.updated_us = done.completed_us;
        }
        session.pins.lock().clear();
        self.store
            .inner
            .uploads
            .completed
            .fetch_add(1, Ordering::Relaxed);
        self.store.inner.audit.record(
            &self.actor,
            &crate::audit::Action::UploadComplete,
            Some(committed.id),
            &serde_json::json!({
                "upload": session.id,
                "bytes": session.header.length,
                "sha256": committed.sha256_hex(),
                "duplicate": committed.duplicate,
            })
            .to_string(),
        )?;
        Ok(())
    }
}
