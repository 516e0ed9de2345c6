//! `verify`: re-reads every chunk of every local segment (CRC) and recomputes each segment's
//! SHA-256, the store's fsck.
//!
//! Invariant: verify only reads; it reports and never changes anything (through an actor
//! handle it records one `verify` entry in the audit log).

use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Store;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CorruptSegment {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub checked: usize,
    pub bytes: u64,
    /// Ids of segments that failed.
    pub corrupt: Vec<String>,
    /// Why each failed.
    pub errors: Vec<CorruptSegment>,
    /// Damaged records found by re-scanning every volume's record headers and metadata
    /// records (full verify only): damage that no segment read touches, such as a change
    /// record or the seal of a sealed volume ("volume N offsets a..b: why").
    pub volume_damage: Vec<String>,
}

impl Store {
    /// Verifies one segment: every chunk's CRC and the whole segment's SHA-256.
    pub fn verify_segment(&self, id: u64) -> Result<()> {
        let expected = self.inner.load_commit(id, false)?.sha256;
        let mut r = self.reader(id)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<Error>() {
                    Ok(err) => *err,
                    Err(other) => Error::Invalid(other.to_string()),
                },
                None => Error::Invalid("read failed".into()),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        let got: [u8; 32] = hasher.finalize().into();
        if got != expected {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: format!(
                    "SHA-256 is {} but {} was recorded at ingest",
                    super::hex(&got),
                    super::hex(&expected)
                ),
            });
        }
        Ok(())
    }

    /// Verifies the given segments (all when `ids` is None); `progress` gets bytes checked.
    pub fn verify(
        &self,
        ids: Option<Vec<u64>>,
        mut progress: impl FnMut(u64),
    ) -> Result<VerifyReport> {
        let all = ids.is_none();
        let ids = match ids {
            Some(ids) => ids,
            None => self.segment_ids(),
        };
        let mut report = VerifyReport::default();
        for id in ids {
            let bytes = self.inner.catalog.read().get(id).map(|e| e.bytes);
            let Some(bytes) = bytes else {
                return Err(Error::NotFound(id.to_string()));
            };
            report.checked += 1;
            match self.verify_segment(id) {
                Ok(()) => report.bytes += bytes,
                Err(e) => {
                    report.corrupt.push(id.to_string());
                    report.errors.push(CorruptSegment {
                        id: id.to_string(),
                        error: e.to_string(),
                    });
                }
            }
            progress(bytes);
        }
        if all {
            report.volume_damage = self.scan_volumes();
        }
        let details = serde_json::json!({
            "checked": report.checked,
            "corrupt": report.corrupt,
            "volume_damage": report.volume_damage.len(),
        });
        self.record_access("verify", None, details)?;
        Ok(report)
    }

    /// Scans the records of every open volume (headers, and commit, change and seal
    /// payloads; not chunk payloads, which segment verification reads). A sealed volume must
    /// scan cleanly to its seal record; an active one must have no damage before its end and
    /// must reach the `replay_from` a checkpoint recorded for it.
    fn scan_volumes(&self) -> Vec<String> {
        let mut vols: Vec<_> = self.inner.volumes.read().values().cloned().collect();
        vols.sort_by_key(|v| v.id);
        // (sealed, replay_from) of each volume as the catalog knows it.
        let states: std::collections::HashMap<u32, (bool, u64)> = {
            let cat = self.inner.catalog.read();
            cat.volumes
                .values()
                .map(|s| (s.id, (s.sealed, s.replay_from)))
                .collect()
        };
        let mut out = Vec::new();
        for v in vols {
            let o = crate::log::scan::scan(&v, 0);
            for d in &o.damage {
                out.push(format!(
                    "volume {} offsets {}..{}: {}",
                    v.id, d.from, d.to, d.what
                ));
            }
            let (sealed, replay_from) = states.get(&v.id).copied().unwrap_or((false, 0));
            if sealed && (!o.sealed || o.end < o.file_len) {
                out.push(format!(
                    "volume {}: sealed, but its records end at offset {} of {} without a \
                     valid seal record after them",
                    v.id, o.end, o.file_len
                ));
            } else if o.end < replay_from {
                // Everything below `replay_from` was durable when a checkpoint recorded it: a
                // scan that stops earlier found damage in the last records of an active volume
                // (which would otherwise look like a torn tail).
                out.push(format!(
                    "volume {}: records end at offset {} but a checkpoint recorded valid \
                     records up to {}: the last records are damaged",
                    v.id, o.end, replay_from
                ));
            }
        }
        out
    }
}
