//! Creating and listing upload sessions: options, `create_upload` (the session file made
//! durable with its reserved segment id), status, the list and the counters.
//!
//! Invariant: a session is acknowledged only once its file and its audit entry are durable.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::registry::new_id;
use super::{
    NewUpload, Session, State, UploadOptions, UploadStats, UploadStatus, SUFFIX, UPLOADS_DIR,
};
use crate::error::{Error, Result};
use crate::format::upload::{encode_header, SessionHeader};
use crate::store::{Inner, Store};

impl Store {
    /// Sets the limits and lifetimes of upload sessions (they apply to later requests).
    pub fn set_upload_options(&self, opts: UploadOptions) {
        *self.inner.uploads.opts.lock() = opts;
    }

    /// The limits and lifetimes of upload sessions.
    pub fn upload_options(&self) -> UploadOptions {
        self.inner.uploads.opts.lock().clone()
    }

    /// Creates an upload session for `actor`: validates the metadata, reserves a segment id,
    /// and makes the session file durable before returning.
    pub fn create_upload(&self, new: NewUpload, actor: &str) -> Result<UploadStatus> {
        self.inner.writable("a resumable upload")?;
        crate::store::check_actor(actor)?;
        self.expire_uploads()?;
        let opts = self.upload_options();
        if new.length == 0 {
            return Err(Error::Invalid(
                "Upload-Length must be at least 1 byte".into(),
            ));
        }
        if new.length > opts.max_length {
            return Err(Error::Invalid(format!(
                "Upload-Length {} is over this server's limit of {} bytes",
                new.length, opts.max_length
            )));
        }
        let mut meta = new.meta;
        if !new.end_known {
            meta.end_us = meta.start_us;
        }
        meta.normalize();
        meta.validate().map_err(Error::Invalid)?;
        let reg = &self.inner.uploads;
        let mut sessions = reg.sessions.lock();
        let open: Vec<&Arc<Session>> = sessions
            .values()
            .filter(|s| s.state.lock().done.is_none())
            .collect();
        if open.len() >= opts.max_sessions {
            return Err(Error::Invalid(format!(
                "{} uploads are in progress, the most this server keeps: finish or \
                 terminate some first",
                open.len()
            )));
        }
        if open.iter().filter(|s| s.header.actor == actor).count() >= opts.max_per_caller {
            return Err(Error::Invalid(format!(
                "{actor} has {} uploads in progress, the most one caller may have: finish \
                 or terminate some first",
                opts.max_per_caller
            )));
        }
        let now = crate::now_us();
        let header = SessionHeader {
            segment_id: self.inner.next_segment_id.fetch_add(1, Ordering::SeqCst),
            dir: self.inner.pick_dir()?,
            day: Inner::day_of(meta.start_us),
            created_us: now,
            expires_us: now
                .saturating_add(i64::try_from(opts.expires_after.as_micros()).unwrap_or(i64::MAX)),
            length: new.length,
            actor: actor.to_string(),
            end_known: new.end_known,
            meta,
        };
        let id = new_id();
        let dir = self.inner.root.join(UPLOADS_DIR);
        crate::fsio::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{id}{SUFFIX}"));
        let frame = encode_header(&header);
        let file = crate::fsio::create_file(&path, crate::fsio::Existing::Refuse)
            .map_err(|e| Error::io(&path, e))?;
        let written = crate::fsio::write_all_at(&file, &frame, 0)
            .and_then(|()| crate::fsio::sync_data(&file, "upload.create"))
            .and_then(|()| crate::fsio::sync_dir(&dir, "upload.create.dir"));
        if let Err(e) = written {
            let _ = crate::fsio::remove_file(&path);
            return Err(Error::io(&path, e));
        }
        self.inner.audit.record(
            actor,
            &crate::audit::Action::UploadCreate,
            None,
            &serde_json::json!({
                "upload": id,
                "length": header.length,
                "officer": header.meta.officer,
                "device": header.meta.device,
                "reserved_segment": header.segment_id,
            })
            .to_string(),
        )?;
        let session = Arc::new(Session {
            id: id.clone(),
            path,
            state: Mutex::new(State {
                extents: Vec::new(),
                offset: 0,
                updated_us: now,
                done: None,
                file_len: frame.len() as u64,
                gone: false,
            }),
            header,
            writer: Mutex::new(None),
            busy: AtomicBool::new(false),
            pins: Arc::new(Mutex::new(HashSet::new())),
        });
        let status = session.status();
        sessions.insert(id, session);
        reg.created.fetch_add(1, Ordering::Relaxed);
        Ok(status)
    }

    /// A session's durable state.
    pub fn upload_status(&self, id: &str) -> Result<UploadStatus> {
        Ok(self.inner.uploads.get(id)?.status())
    }

    /// Sessions in progress (not completed), oldest first.
    pub fn uploads(&self) -> Vec<UploadStatus> {
        let sessions: Vec<Arc<Session>> = self
            .inner
            .uploads
            .sessions
            .lock()
            .values()
            .cloned()
            .collect();
        let mut out: Vec<UploadStatus> = sessions
            .iter()
            .map(|s| s.status())
            .filter(|s| s.completed.is_none())
            .collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        out
    }

    /// The registry's counters.
    pub fn upload_stats(&self) -> UploadStats {
        let r = &self.inner.uploads;
        UploadStats {
            sessions_open: self.uploads().len() as u64,
            created_total: r.created.load(Ordering::Relaxed),
            completed_total: r.completed.load(Ordering::Relaxed),
            terminated_total: r.terminated.load(Ordering::Relaxed),
            expired_total: r.expired.load(Ordering::Relaxed),
            bytes_received_total: r.bytes.load(Ordering::Relaxed),
        }
    }
}
