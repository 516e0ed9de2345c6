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
//!
//! Here: the session types; `registry.rs` (the sessions in `Inner`, loaded at open),
//! `sessions.rs` (create, status, list), `patch.rs` (one request's writing), `resume.rs`
//! (`upload_patch`, termination, expiry), `checksum.rs` (the tus checksum extension).

pub(super) mod checksum;
mod patch;
mod registry;
mod resume;
mod sessions;

pub use patch::UploadPatch;
pub(crate) use registry::Registry;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use sha2::Sha256;

use super::ingest::Committed;
use crate::error::{Error, IoContext, Result};
use crate::format::commit::Extent;
use crate::format::upload::{SessionDone, SessionHeader};
use crate::input::time::format_time;
use crate::meta::SegmentMeta;

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
