//! Checking one segment's local copy, chunk by chunk: the work of `verify` and of the
//! background scrub. Also the store's list of corrupt segments (the findings) and the scrub
//! state file that persists it with the scrub's cursor (FORMAT.md §19).
//!
//! Invariants:
//! - a check only reads; it never trusts a chunk whose header, CRC, segment id, index or
//!   length disagree with the commit record, and it never falls back to the cloud copy (the
//!   point is to find local damage, which reads would hide by reading the cloud);
//! - a chunk that cannot be read because of an I/O error is not corruption: the segment is
//!   "lost" (its disk or volume is unreachable) and the data dir is checked (§9, `lost.rs`);
//! - damage found while the segment is being evicted or deleted is ignored (the holes are
//!   the eviction's, not rot);
//! - a finding is recorded in the audit log (`corruption`) once, when it first appears, and
//!   stays in the list until a check or a repair finds the segment whole again.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

use crate::audit::STORE_ACTOR;
use crate::error::{Error, Result};
use crate::format::change::{FLAG_DELETED, FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::chunk::ChunkForm;
use crate::format::record::Kind;
use crate::format::scrub::{truncate, Finding, FindingKind, ScrubState, MAX_DETAIL};
use crate::format::DecodeError;
use crate::store::{Inner, Store};

/// Where the scrub state lives, under the store root.
pub const SCRUB_STATE: &str = "scrub/state";

/// What a check of a segment's local copy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Every chunk passed its CRC and the whole segment its SHA-256.
    Whole,
    /// Nothing local to check (evicted, deleted, or evicted/deleted during the check).
    NoLocalCopy,
    /// The caller asked to stop part-way.
    Interrupted,
    /// The local bytes cannot be reached (disk or volume gone, I/O errors).
    Lost(String),
    /// The local bytes fail their checks. `chunks` lists the chunks that fail (empty when the
    /// damage cannot be pinned to chunks: a damaged commit record, or a SHA-256 mismatch with
    /// every chunk CRC-valid).
    Corrupt { detail: String, chunks: Vec<u32> },
}

/// The findings list and the scrub cursor, shared by the store and its scrub thread.
pub(crate) struct ScrubShared {
    pub path: PathBuf,
    pub state: Mutex<ScrubState>,
    /// Serialises writes of the state file (the newest snapshot is written last).
    save: Mutex<()>,
    /// Why the state file was not used at open (damaged), if it was not.
    pub note: Option<String>,
    /// Set while a scrub thread runs (one per store).
    pub running: std::sync::atomic::AtomicBool,
}

impl ScrubShared {
    /// Loads `<root>/scrub/state`; a missing file is a fresh state, a damaged one is noted
    /// and replaced (the findings are in the audit log too); a newer version refuses the open.
    pub fn load(root: &std::path::Path) -> Result<ScrubShared> {
        let path = root.join(SCRUB_STATE);
        let (state, note) = match std::fs::read(&path) {
            Ok(bytes) => match ScrubState::decode(&bytes) {
                Ok(s) => (s, None),
                Err(DecodeError::UnsupportedVersion {
                    found, supported, ..
                }) => {
                    return Err(Error::UnsupportedVersion {
                        what: "scrub state",
                        path,
                        found,
                        supported,
                    })
                }
                Err(e) => (
                    ScrubState::default(),
                    Some(format!(
                        "{} was damaged ({e}); the scrub starts a new pass",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ScrubState::default(), None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(ScrubShared {
            path,
            state: Mutex::new(state),
            save: Mutex::new(()),
            note,
            running: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Writes the current state atomically (temporary file, fsync, rename, directory fsync).
    pub fn save(&self) -> Result<()> {
        let _one = self.save.lock();
        let bytes = self.state.lock().encode();
        // The first save creates `scrub/` (`write_atomic` makes its entry in the root durable).
        crate::log::write_atomic(&self.path, &bytes)
    }
}

impl Inner {
    /// Checks segment `id`'s local copy: every chunk (header, CRC, identity) and the SHA-256.
    /// `pace(n)` is called after each chunk of `n` bytes; returning false interrupts.
    pub(crate) fn check_local(&self, id: u64, pace: &mut dyn FnMut(u64) -> bool) -> Checked {
        let flags = |inner: &Inner| inner.catalog.read().get(id).map(|e| e.flags);
        match flags(self) {
            None => return Checked::NoLocalCopy,
            Some(f) if f & (FLAG_EVICTED | FLAG_DELETED) != 0 => return Checked::NoLocalCopy,
            Some(_) => {}
        }
        let outcome = self.check_chunks(id, pace);
        // Holes punched by an eviction or deletion that raced with the check are not rot.
        let gone = flags(self).is_none_or(|f| f & (FLAG_EVICTED | FLAG_DELETED) != 0);
        if gone && matches!(outcome, Checked::Corrupt { .. } | Checked::Lost(_)) {
            return Checked::NoLocalCopy;
        }
        outcome
    }

    fn check_chunks(&self, id: u64, pace: &mut dyn FnMut(u64) -> bool) -> Checked {
        let rec = match self.load_commit(id, false) {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Checked::NoLocalCopy,
            Err(Error::SegmentCorrupt { what, .. }) => {
                return Checked::Corrupt {
                    detail: what,
                    chunks: Vec::new(),
                }
            }
            Err(e) => {
                self.note_read_failure(id, &e);
                return Checked::Lost(e.to_string());
            }
        };
        let mut hasher = Sha256::new();
        // In an encrypted store a chunk record holds nonce ‖ ciphertext ‖ tag: the tag is
        // checked too, and the plaintext hashed.
        let cipher = self.crypt.as_ref().map(|c| c.segment(id));
        let form = ChunkForm::of(rec.block_crcs, cipher.is_some());
        let mut bad: Vec<u32> = Vec::new();
        let mut first_detail = None;
        for (i, ext) in rec.extents.iter().enumerate() {
            let index = i as u32;
            let Some(vol) = self.volume(ext.volume_id) else {
                return Checked::Lost(format!(
                    "volume {} holding chunk {index} is missing or its disk is unavailable",
                    ext.volume_id
                ));
            };
            let result = vol.unpunched(|_| match vol.read_record(ext.offset) {
                Ok((h, payload)) => {
                    if h.kind != Kind::Chunk
                        || h.a != id
                        || h.b != index
                        || h.len != ext.len + form.extra(ext.len)
                        || h.has_block_crcs() != (form == ChunkForm::Blocks)
                    {
                        Err(Some(format!(
                            "chunk {index} (volume {} offset {}) holds another record (kind {:?}, segment {}, chunk {})",
                            ext.volume_id, ext.offset, h.kind, h.a, h.b
                        )))
                    } else {
                        match &cipher {
                            // Blocks form: the data, not the block CRC trailer after it.
                            None => {
                                hasher.update(payload.get(..ext.len as usize).unwrap_or_default());
                                Ok(())
                            }
                            Some(c) => match c.open(crate::crypt::DOMAIN_CHUNK, u64::from(index), &payload) {
                                Ok(plain) => {
                                    hasher.update(&plain);
                                    Ok(())
                                }
                                Err(t) => Err(Some(format!(
                                    "chunk {index} (volume {} offset {}): {t}",
                                    ext.volume_id, ext.offset
                                ))),
                            },
                        }
                    }
                }
                Err(Error::Corruption { what, .. }) => Err(Some(format!(
                    "chunk {index} (volume {} offset {}): {what}",
                    ext.volume_id, ext.offset
                ))),
                Err(e) => {
                    // Not rot: the disk could not be read. Leave it to the caller.
                    first_detail.get_or_insert(e.to_string());
                    Err(None)
                }
            });
            match result {
                Ok(()) => {}
                Err(Some(detail)) => {
                    bad.push(index);
                    if first_detail.is_none() {
                        first_detail = Some(detail);
                    }
                }
                Err(None) => {
                    let why = first_detail.unwrap_or_default();
                    self.note_volume_failure(&vol, &why);
                    return Checked::Lost(why);
                }
            }
            if !pace(u64::from(ext.len)) {
                return Checked::Interrupted;
            }
        }
        if !bad.is_empty() {
            let detail = format!(
                "{} of {} chunks fail their checks; first: {}",
                bad.len(),
                rec.extents.len(),
                first_detail.unwrap_or_default()
            );
            return Checked::Corrupt {
                detail,
                chunks: bad,
            };
        }
        let got: [u8; 32] = hasher.finalize().into();
        if got != rec.sha256 {
            return Checked::Corrupt {
                detail: format!(
                    "every chunk passes its CRC but the SHA-256 is {} where {} was recorded at ingest",
                    crate::store::hex(&got),
                    crate::store::hex(&rec.sha256)
                ),
                chunks: Vec::new(),
            };
        }
        Checked::Whole
    }

    /// Adds (or updates) a finding; returns true if the segment was not listed before.
    pub(crate) fn add_finding(&self, id: u64, kind: FindingKind, detail: &str) -> bool {
        let cloud_copy = self
            .catalog
            .read()
            .get(id)
            .is_some_and(|e| e.flags & FLAG_UPLOADED != 0);
        let mut st = self.scrub.state.lock();
        let detail = truncate(detail, MAX_DETAIL).to_string();
        if let Some(f) = st.findings.iter_mut().find(|f| f.segment == id) {
            f.kind = kind;
            f.cloud_copy = cloud_copy;
            f.detail = detail;
            return false;
        }
        st.findings.push(Finding {
            segment: id,
            found_us: self.now_us(),
            kind,
            cloud_copy,
            detail,
        });
        true
    }

    /// Removes a segment's finding; returns true if it had one.
    pub(crate) fn clear_finding(&self, id: u64) -> bool {
        let mut st = self.scrub.state.lock();
        let before = st.findings.len();
        st.findings.retain(|f| f.segment != id);
        st.findings.len() != before
    }
}

impl Store {
    /// The actor of entries the store's own checks write: the handle's, else `(footage)`.
    pub(crate) fn check_actor_name(&self) -> &str {
        self.actor.as_deref().unwrap_or(STORE_ACTOR)
    }

    /// Records what a check found: a `corruption` audit entry the first time a segment is
    /// found corrupt, and the findings list (saved). Clears the finding of a whole segment.
    pub(crate) fn record_check(&self, id: u64, checked: &Checked) -> Result<()> {
        if self.inner.ro.is_some() {
            // A read-only open reports what it finds; the owner's checks record it.
            return Ok(());
        }
        if matches!(checked, Checked::Whole) && self.inner.clear_finding(id) {
            return self.inner.scrub.save();
        }
        let Checked::Corrupt { detail, chunks } = checked else {
            return Ok(());
        };
        if !self.inner.add_finding(id, FindingKind::Corrupt, detail) {
            return Ok(()); // recorded when first found
        }
        let cloud_copy = self
            .inner
            .catalog
            .read()
            .get(id)
            .is_some_and(|e| e.flags & FLAG_UPLOADED != 0);
        self.inner.audit.record(
            self.check_actor_name(),
            &crate::audit::Action::Corruption,
            Some(id),
            &serde_json::json!({
                "detail": truncate(detail, MAX_DETAIL),
                "chunks": chunks,
                "cloud_copy": cloud_copy,
            })
            .to_string(),
        )?;
        self.inner.scrub.save()?;
        Ok(())
    }

    /// The corrupt segments found by `verify` or the scrub and not repaired yet.
    pub fn findings(&self) -> Vec<Finding> {
        self.inner.scrub.state.lock().findings.clone()
    }
}
