//! Writing to, ending and expiring sessions: `upload_patch` (resuming the writer from the
//! durable state when needed), termination, and expiry.
//!
//! Invariant: a session is removed (file, then pinned volumes) only after its audit entry is
//! durable; a resumed writer rehashes the stored bytes by reading them, never writing twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Session, UploadPatch, UploadRefusal, UPLOADS_DIR};
use crate::audit::Durability;
use crate::error::{Error, IoContext, Result};
use crate::format::chunk::ChunkForm;
use crate::format::commit::Extent;
use crate::meta::SegmentMeta;
use crate::store::ingest::SegmentWriter;
use crate::store::read::SegmentReader;
use crate::store::Store;

impl Store {
    /// Starts a request that writes at `offset`, which must be the durable offset (else
    /// `UploadRefusal::OffsetMismatch`). Waits up to `wait` for another request on the
    /// session to end (`UploadRefusal::Busy`).
    pub fn upload_patch(
        &self,
        id: &str,
        offset: u64,
        actor: &str,
        wait: Duration,
    ) -> std::result::Result<UploadPatch, UploadRefusal> {
        let session = self.inner.uploads.get(id).map_err(UploadRefusal::Store)?;
        let deadline = std::time::Instant::now() + wait;
        while session
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            if std::time::Instant::now() >= deadline {
                return Err(UploadRefusal::Busy);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut patch = UploadPatch {
            store: self.clone(),
            session: Arc::clone(&session),
            writer: None,
            actor: actor.to_string(),
            offset,
            check: None,
        };
        let (durable, done, gone, extents) = {
            let st = session.state.lock();
            (st.offset, st.done.is_some(), st.gone, st.extents.clone())
        };
        if gone {
            return Err(UploadRefusal::Store(Error::NotFound(format!(
                "upload {id}"
            ))));
        }
        if done {
            return Err(UploadRefusal::Completed);
        }
        if offset != durable {
            return Err(UploadRefusal::OffsetMismatch { durable });
        }
        let kept = session.writer.lock().take();
        patch.writer = Some(match kept {
            Some((hasher, bytes, kept_extents)) if bytes == durable && kept_extents == extents => {
                let h = &session.header;
                SegmentWriter::resume(
                    Arc::clone(&self.inner),
                    h.meta.clone(),
                    Arc::from(h.actor.as_str()),
                    (h.segment_id, h.dir, h.day),
                    extents,
                    durable,
                    hasher,
                    Arc::clone(&session.pins),
                )
                .map_err(UploadRefusal::Store)?
            }
            _ => self
                .resume_writer(&session, extents, durable)
                .map_err(UploadRefusal::Store)?,
        });
        Ok(patch)
    }

    /// A writer that goes on from the durable state: the bytes so far are hashed again by
    /// reading their chunks.
    fn resume_writer(
        &self,
        session: &Session,
        extents: Vec<Extent>,
        durable: u64,
    ) -> Result<SegmentWriter> {
        let h = &session.header;
        let probe = SegmentWriter::with_parts(
            Arc::clone(&self.inner),
            SegmentMeta::default(),
            Arc::from(h.actor.as_str()),
            h.segment_id,
            h.dir,
            h.day,
        );
        let form = crate::store::ingest::chunk_form_of(&self.inner, h.segment_id, &extents)?;
        let capacity = match form {
            ChunkForm::Plain => ChunkForm::Plain.capacity(u64::from(self.inner.config.chunk_size)),
            _ => u64::from(probe.capacity()),
        } as u32;
        let mut reader = SegmentReader::over_extents(
            Arc::clone(&self.inner),
            h.segment_id,
            (capacity, form),
            extents.clone(),
        );
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut seen = 0u64;
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| {
                Error::Invalid(format!(
                    "cannot read back upload {} to resume it: {e}",
                    session.id
                ))
            })?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
            seen += n as u64;
        }
        if seen != durable {
            return Err(Error::Invalid(format!(
                "upload {} holds {seen} bytes, its record says {durable}",
                session.id
            )));
        }
        SegmentWriter::resume(
            Arc::clone(&self.inner),
            h.meta.clone(),
            Arc::from(h.actor.as_str()),
            (h.segment_id, h.dir, h.day),
            extents,
            durable,
            hasher,
            Arc::clone(&session.pins),
        )
    }

    /// Ends a session that is not complete: its file is removed and its chunks become dead
    /// space. Recorded in the audit log under `actor`.
    pub fn terminate_upload(&self, id: &str, actor: &str) -> Result<()> {
        let session = self.inner.uploads.get(id)?;
        if session.state.lock().done.is_some() {
            return Err(Error::Invalid(format!(
                "upload {id} is complete: its segment is stored and cannot be terminated"
            )));
        }
        self.remove_session(&session, actor, "upload-terminate")?;
        self.inner
            .uploads
            .terminated
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn remove_session(&self, session: &Arc<Session>, actor: &str, action: &str) -> Result<()> {
        // Never under a request that is writing: wait for it to end.
        while session
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = (|| {
            let offset = session.state.lock().offset;
            if action != "upload-expire-completed" {
                self.inner.audit.append(
                    actor,
                    action,
                    None,
                    &serde_json::json!({
                        "upload": session.id,
                        "offset": offset,
                        "length": session.header.length,
                    })
                    .to_string(),
                    Durability::Durable,
                )?;
            }
            crate::fsio::remove_file(&session.path).map_err(|e| Error::io(&session.path, e))?;
            let dir = self.inner.root.join(UPLOADS_DIR);
            crate::fsio::sync_dir(&dir, "upload.remove.dir").at(&dir)?;
            session.state.lock().gone = true;
            *session.writer.lock() = None;
            session.pins.lock().clear();
            self.inner.uploads.sessions.lock().remove(&session.id);
            Ok(())
        })();
        session.busy.store(false, Ordering::Release);
        r
    }

    /// Removes sessions past their expiry (in progress) or past `keep_completed`
    /// (completed); returns how many were removed.
    pub fn expire_uploads(&self) -> Result<usize> {
        if self.is_read_only() {
            return Ok(0);
        }
        let now = crate::now_us();
        let keep =
            i64::try_from(self.upload_options().keep_completed.as_micros()).unwrap_or(i64::MAX);
        let sessions: Vec<Arc<Session>> = self
            .inner
            .uploads
            .sessions
            .lock()
            .values()
            .cloned()
            .collect();
        let mut n = 0;
        for s in sessions {
            let done = s.state.lock().done;
            let action = match done {
                Some(d) if d.completed_us.saturating_add(keep) < now => "upload-expire-completed",
                None if s.header.expires_us < now && !s.busy.load(Ordering::Acquire) => {
                    "upload-expire"
                }
                _ => continue,
            };
            self.remove_session(&s, crate::store::SYSTEM_ACTOR, action)?;
            if action == "upload-expire" {
                self.inner.uploads.expired.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
        }
        Ok(n)
    }
}
