//! Upload sessions: resumable ingest (the store side of tus, `crate::server::tus`).
//!
//! A session reserves a segment id at creation and writes the video's bytes once, as chunk
//! records straight into the volumes (a [`SegmentWriter`]), across as many requests, restarts
//! and crashes as it takes. Its durable state is `<store>/uploads/<id>.upl`
//! (`crate::format::upload`): a header (metadata, length, reserved id, data dir, volume day,
//! actor, created, expires), then one progress frame per acknowledged request (the chunks it
//! added and the new offset), then a completed frame.
//!
//! Invariants:
//! - an offset is reported (by [`UploadPatch::finish`] and [`Store::upload_status`]) only once
//!   it is durable: the request's tail is written as a short chunk, every volume touched is
//!   fdatasync'ed, then the progress frame is appended and fdatasync'ed. Bytes received after
//!   the last durable frame (a crash) are dead chunks; nothing durable is written twice;
//! - a reserved segment id is never reused: every open of the store (service or plain CLI)
//!   reads the session files and moves `next_segment_id` past every id they reserved;
//! - the volumes holding a live session's chunks are pinned: compaction and volume dropping
//!   skip them (a volume is pinned before the first chunk is appended to it, and only active
//!   volumes take appends, so a sealed volume's pin set is final); once a session completes,
//!   is terminated or expires, its chunks are the segment's or ordinary dead space;
//! - the completing request's answer is given only after the segment's commit record and its
//!   `ingest` audit entry are durable (`SegmentWriter::commit`), then the completed frame;
//!   creation, completion, termination and expiry are each in the audit log;
//! - retention leaves the reserved segment of a session not completed alone
//!   (`Registry::completing`): a deletion between the commit record and the completed frame
//!   would punch chunks the completion still has to read back after a crash;
//! - one request writes to a session at a time ([`UploadPatch`] holds it); after any write
//!   error the in-memory writer is dropped and the next request resumes from the durable
//!   state, rehashing the stored bytes by reading them (reading twice is fine, writing is not).

pub(super) mod checksum;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ingest::{Committed, SegmentWriter};
use super::read::SegmentReader;
use super::{hex, Inner, Store};
use crate::audit::Durability;
use crate::error::{Error, IoContext, Result};
use crate::format::commit::Extent;
use crate::format::upload::{
    decode_file, encode_done, encode_header, encode_progress, SessionDone, SessionHeader,
};
use crate::input::time::format_time;
use crate::meta::SegmentMeta;
use checksum::{Running, UploadChecksum};

/// Directory of session files, under the store root.
pub const UPLOADS_DIR: &str = "uploads";
/// Suffix of a session file.
const SUFFIX: &str = ".upl";

/// Limits and lifetimes of upload sessions.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Largest `Upload-Length` accepted. Default = 64 GiB (a 24 h shift at 6 Mbit/s).
    pub max_length: u64,
    /// Sessions in progress at once, store-wide. Default = 256.
    pub max_sessions: usize,
    /// Sessions in progress at once per caller. Default = 32 (a dock with many bays).
    pub max_per_caller: usize,
    /// A session not completed this long after its creation is removed. Default = 7 days.
    pub expires_after: Duration,
    /// How long a completed session still answers HEAD with its segment. Default = 1 day.
    pub keep_completed: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            max_length: 64 << 30,
            max_sessions: 256,
            max_per_caller: 32,
            expires_after: Duration::from_secs(7 * 86_400),
            keep_completed: Duration::from_secs(86_400),
        }
    }
}

/// What a new upload is.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub length: u64,
    /// `end_us` is ignored when `end_known` is false: it is read from the MP4 header at
    /// completion.
    pub meta: SegmentMeta,
    pub end_known: bool,
}

/// A session as shown by `GET /api/uploads` and HEAD.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UploadStatus {
    pub id: String,
    pub officer: String,
    pub device: String,
    pub length: u64,
    /// Durable bytes.
    pub offset: u64,
    pub created: String,
    pub updated: String,
    pub expires: String,
    #[serde(skip)]
    pub expires_us: i64,
    /// Who created it.
    pub caller: String,
    /// The stored segment, once complete.
    pub completed: Option<Committed>,
}

/// Counters of the upload registry (for `/metrics`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct UploadStats {
    pub sessions_open: u64,
    pub created_total: u64,
    pub completed_total: u64,
    pub terminated_total: u64,
    pub expired_total: u64,
    /// Bytes made durable by upload requests (acknowledged).
    pub bytes_received_total: u64,
}

/// Mutable state of a session.
struct State {
    extents: Vec<Extent>,
    offset: u64,
    updated_us: i64,
    done: Option<SessionDone>,
    /// End of the valid frames in the session file.
    file_len: u64,
    /// Terminated or expired: the file is gone.
    gone: bool,
}

struct Session {
    id: String,
    path: PathBuf,
    header: SessionHeader,
    state: Mutex<State>,
    /// The writer's hash state, length and chunks between requests (None before the first
    /// request after a restart or an error: the next one hashes the stored bytes again).
    /// Not the writer itself: it holds the store, which holds this.
    writer: Mutex<Option<(Sha256, u64, Vec<Extent>)>>,
    busy: AtomicBool,
    pins: Arc<Mutex<HashSet<u32>>>,
}

/// Inside one upload request, the whole chunks received are made durable and recorded every
/// this many bytes: a service killed in the middle of a long PATCH loses at most this much
/// (plus a chunk) of what the dock had sent, never anything acknowledged.
pub const PROGRESS_EVERY: u64 = 32 << 20;

/// Every session of the store.
pub(crate) struct Registry {
    opts: Mutex<UploadOptions>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    created: AtomicU64,
    completed: AtomicU64,
    terminated: AtomicU64,
    expired: AtomicU64,
    bytes: AtomicU64,
}

impl Registry {
    /// No sessions: a read-only open (the owner's sessions are its own, and none is visible
    /// as a segment before it completes).
    pub fn empty() -> Registry {
        Registry {
            opts: Mutex::new(UploadOptions::default()),
            sessions: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            terminated: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Reads every session file under `root/uploads`. Returns the registry and the smallest
    /// segment id the store may still hand out. Unreadable files are left where they are
    /// (and listed in the errors) so an operator can look at them.
    pub fn load(root: &Path) -> Result<(Registry, u64, Vec<String>)> {
        let reg = Registry::empty();
        let dir = root.join(UPLOADS_DIR);
        let mut floor = 0u64;
        let mut bad = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((reg, floor, bad)),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(SUFFIX).filter(|i| valid_id(i)) else {
                continue;
            };
            let path = entry.path();
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let f = match decode_file(&data) {
                Ok(f) => f,
                Err(e) => {
                    bad.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if f.valid_len < data.len() as u64 {
                // A torn append: cut it off so the next frame follows a valid one.
                let file = crate::fsio::create_file(&path, crate::fsio::Existing::Keep)
                    .map_err(|e| Error::io(&path, e))?;
                crate::fsio::set_len(&file, f.valid_len).at(&path)?;
                crate::fsio::sync_data(&file, "upload.cut_tail").at(&path)?;
            }
            floor = floor.max(f.header.segment_id.saturating_add(1));
            let pins: HashSet<u32> = if f.done.is_none() {
                f.extents.iter().map(|e| e.volume_id).collect()
            } else {
                HashSet::new()
            };
            let updated_us = f.done.map_or(f.header.created_us, |d| d.completed_us);
            let s = Session {
                id: id.to_string(),
                path,
                state: Mutex::new(State {
                    extents: f.extents,
                    offset: f.offset,
                    updated_us,
                    done: f.done,
                    file_len: f.valid_len,
                    gone: false,
                }),
                header: f.header,
                writer: Mutex::new(None),
                busy: AtomicBool::new(false),
                pins: Arc::new(Mutex::new(pins)),
            };
            reg.sessions.lock().insert(id.to_string(), Arc::new(s));
        }
        Ok((reg, floor, bad))
    }

    /// Whether `segment` is the reserved id of a session not completed yet (its completed
    /// frame not written). Retention leaves such a segment alone: between its commit record
    /// and the completed frame (or after a crash there, until the next request or HEAD
    /// finishes the completion by reading the chunks back) deleting or evicting it would
    /// leave a session that can never complete.
    pub fn completing(&self, segment: u64) -> bool {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        sessions.iter().any(|s| {
            s.header.segment_id == segment && {
                let st = s.state.lock();
                st.done.is_none() && !st.gone
            }
        })
    }

    /// Volumes holding chunks of sessions in progress.
    pub fn pinned_volumes(&self) -> HashSet<u32> {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        let mut out = HashSet::new();
        for s in sessions {
            if s.state.lock().done.is_none() {
                out.extend(s.pins.lock().iter().copied());
            }
        }
        out
    }

    fn get(&self, id: &str) -> Result<Arc<Session>> {
        self.sessions
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("upload {id}")))
    }
}

/// Upload ids are 32 lowercase hex digits (128 random bits).
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

impl Session {
    fn status(&self) -> UploadStatus {
        let st = self.state.lock();
        let completed = st.done.map(|d| Committed {
            id: d.segment_id,
            sha256: d.sha256,
            bytes: self.header.length,
            duplicate: d.duplicate,
        });
        UploadStatus {
            id: self.id.clone(),
            officer: self.header.meta.officer.clone(),
            device: self.header.meta.device.clone(),
            length: self.header.length,
            offset: st.offset,
            created: format_time(self.header.created_us),
            updated: format_time(st.updated_us),
            expires: format_time(self.header.expires_us),
            expires_us: self.header.expires_us,
            caller: self.header.actor.clone(),
            completed,
        }
    }

    /// Appends a frame and makes it durable.
    fn append_frame(&self, st: &mut State, frame: &[u8]) -> Result<()> {
        let file = crate::fsio::create_file(&self.path, crate::fsio::Existing::Keep)
            .map_err(|e| Error::io(&self.path, e))?;
        crate::fsio::write_all_at(&file, frame, st.file_len).at(&self.path)?;
        crate::fsio::sync_data(&file, "upload.frame").at(&self.path)?;
        st.file_len += frame.len() as u64;
        Ok(())
    }
}

/// One request's writing to a session. Dropping it without [`UploadPatch::finish`] forgets
/// the bytes written since the last durable offset (they stay as dead chunks).
pub struct UploadPatch {
    store: Store,
    session: Arc<Session>,
    writer: Option<SegmentWriter>,
    actor: String,
    /// Offset after the bytes written so far by this request (not yet durable).
    offset: u64,
    /// The checksum the request announced, the digest of its bytes so far, and the writer's
    /// hash state when it started (restored if the checksum does not match).
    check: Option<(UploadChecksum, Running, Sha256)>,
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
                w.capacity(),
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
        self.store.inner.audit.append(
            &self.actor,
            "upload-complete",
            Some(committed.id),
            &serde_json::json!({
                "upload": session.id,
                "bytes": session.header.length,
                "sha256": committed.sha256_hex(),
                "duplicate": committed.duplicate,
            })
            .to_string(),
            Durability::Durable,
        )?;
        Ok(())
    }
}

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
        super::check_actor(actor)?;
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
        self.inner.audit.append(
            actor,
            "upload-create",
            None,
            &serde_json::json!({
                "upload": id,
                "length": header.length,
                "officer": header.meta.officer,
                "device": header.meta.device,
                "reserved_segment": header.segment_id,
            })
            .to_string(),
            Durability::Durable,
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

    /// Starts a request that writes at `offset`, which must be the durable offset (else
    /// [`UploadRefusal::OffsetMismatch`]). Waits up to `wait` for another request on the
    /// session to end ([`UploadRefusal::Busy`]).
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
        let mut reader = SegmentReader::over_extents(
            Arc::clone(&self.inner),
            h.segment_id,
            probe.capacity(),
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
        Ok(SegmentWriter::resume(
            Arc::clone(&self.inner),
            h.meta.clone(),
            Arc::from(h.actor.as_str()),
            (h.segment_id, h.dir, h.day),
            extents,
            durable,
            hasher,
            Arc::clone(&session.pins),
        ))
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
            self.remove_session(&s, super::SYSTEM_ACTOR, action)?;
            if action == "upload-expire" {
                self.inner.uploads.expired.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Why a request may not write to a session.
#[derive(Debug, thiserror::Error)]
pub enum UploadRefusal {
    #[error("Upload-Offset does not match: the upload's offset is {durable}")]
    OffsetMismatch { durable: u64 },
    #[error("another request is writing to this upload")]
    Busy,
    #[error("the upload is already complete")]
    Completed,
    #[error(transparent)]
    Store(Error),
}
