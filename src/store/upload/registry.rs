//! The registry of upload sessions (in `Inner`): loading every session file at open, the
//! sessions' counters, the volumes live sessions pin, and session ids.
//!
//! Invariant: every id a session file reserved is below the floor `load` returns, so the
//! store never hands it out again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Session, State, UploadOptions, SUFFIX, UPLOADS_DIR};
use crate::error::{Error, IoContext, Result};
use crate::format::upload::decode_file;
use crate::store::hex;

/// Every session of the store.
pub(crate) struct Registry {
    pub(super) opts: Mutex<UploadOptions>,
    pub(super) sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub(super) created: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) terminated: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) bytes: AtomicU64,
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

    pub(super) fn get(&self, id: &str) -> Result<Arc<Session>> {
        self.sessions
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("upload {id}")))
    }
}

/// Upload ids are 32 lowercase hex digits (128 random bits).
pub(super) fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(super) fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}
