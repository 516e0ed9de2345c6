//! Repairing a segment's damaged local chunks from its verified cloud copy.
//!
//! How: each damaged chunk record is rewritten **in place** with exactly the bytes that were
//! written there at ingest. The payload comes from the cloud (ranged reads, every 1 MiB block
//! checked against `meta.json`'s CRC32, and `meta.json` must name the segment's SHA-256 and
//! length); the header is recomputed from it, the segment id and the chunk index, and must
//! match the commit record's extent. Then the whole local segment is checked again, chunk
//! CRCs and SHA-256, before the repair counts.
//!
//! Why in place and not a re-append with a record that moves the extents: the bytes written
//! are identical to the original record, so no metadata changes, nothing needs replaying,
//! and the volume's layout (placement, `replay_from`, live-byte counts) is untouched.
//!
//! Crash safety: a rewrite writes the header, then the payload, then fdatasyncs. A crash
//! part-way leaves each byte either as the damage left it or as the original: the record
//! still fails its CRC (or is whole), never valid with other bytes. Neighbouring records are
//! never touched (the write covers exactly `[offset, offset + 32 + len)` of the extent).
//! Every step is idempotent, so a rerun repairs what a crash interrupted. The `repair`
//! audit entry is written after the end-to-end check; a crash before it only means the next
//! check finds the segment whole (and clears the finding) without a `repair` entry; the
//! `corruption` entry stays.
//!
//! Fail points (`FOOTAGE_FAILPOINT`): `repair.fetched` (chunk bytes fetched, nothing
//! written), `repair.torn` (header rewritten, payload not), `repair.written` (after each
//! chunk's fdatasync), `repair.checked` (after the end-to-end check, before the audit entry).

use super::check::Checked;
use crate::error::{Error, Result};
use crate::fail;
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::chunk::{build_trailer, ChunkForm};
use crate::format::record::{Kind, RecordHeader};
use crate::format::scrub::FindingKind;
use crate::store::Store;

/// What [`Store::repair`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepairOutcome {
    /// Nothing to repair: the local copy is whole (or there is none: evicted).
    Whole,
    /// These chunks were rewritten from the cloud; the segment is whole again.
    Repaired {
        /// Indexes of the chunks rewritten (from 0).
        chunks: Vec<u32>,
    },
    /// The damage is reported but cannot be repaired (why).
    NotRepairable {
        /// Why, in words.
        reason: String,
    },
    /// The local copy cannot be reached (its disk or volume is gone).
    Lost {
        /// Why, in words.
        reason: String,
    },
}

impl Store {
    /// Checks segment `id`'s local copy and repairs damaged chunks from its verified cloud
    /// copy. Corruption is recorded (audit `corruption`, the findings list) whether or not it
    /// can be repaired; a repair is recorded as `repair`. Never deletes anything.
    pub fn repair(&self, id: u64) -> Result<RepairOutcome> {
        self.inner.writable("repair")?;
        if self.inner.catalog.read().get(id).is_none() {
            return Err(Error::NotFound(id.to_string()));
        }
        let checked = self.inner.check_local(id, &mut |_| true);
        self.record_check(id, &checked)?;
        self.repair_checked(id, checked)
    }

    /// Repairs after a check (already recorded) found `checked`.
    pub(crate) fn repair_checked(&self, id: u64, checked: Checked) -> Result<RepairOutcome> {
        let (detail, chunks) = match checked {
            Checked::Whole | Checked::NoLocalCopy | Checked::Interrupted => {
                return Ok(RepairOutcome::Whole)
            }
            Checked::Lost(reason) => return Ok(RepairOutcome::Lost { reason }),
            Checked::Corrupt { detail, chunks } => (detail, chunks),
        };
        let flags = self.inner.catalog.read().get(id).map_or(0, |e| e.flags);
        let reason = if flags & FLAG_UPLOADED == 0 {
            Some("it has no verified cloud copy".to_string())
        } else if chunks.is_empty() {
            Some(format!("the damage is not in chunk records ({detail})"))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Ok(RepairOutcome::NotRepairable { reason });
        }
        match self.rewrite_chunks(id, &chunks) {
            Ok(()) => {}
            Err(e) => {
                let why = e.to_string();
                self.inner.add_finding(id, FindingKind::RepairFailed, &why);
                self.inner.audit.record(
                    self.check_actor_name(),
                    &crate::audit::Action::RepairFailed,
                    Some(id),
                    &serde_json::json!({ "chunks": chunks, "error": why }).to_string(),
                )?;
                self.inner.scrub.save()?;
                return Ok(RepairOutcome::NotRepairable { reason: why });
            }
        }
        fail::point("repair.checked");
        self.inner.audit.record(
            self.check_actor_name(),
            &crate::audit::Action::Repair,
            Some(id),
            &serde_json::json!({ "chunks": chunks, "from": "cloud" }).to_string(),
        )?;
        self.inner.clear_finding(id);
        self.inner.scrub.state.lock().repaired_total += 1;
        self.inner.scrub.save()?;
        Ok(RepairOutcome::Repaired { chunks })
    }

    /// Rewrites `chunks` of segment `id` from the cloud copy, then checks the whole segment.
    fn rewrite_chunks(&self, id: u64, chunks: &[u32]) -> Result<()> {
        let rec = self.inner.load_commit(id, false)?;
        let tier = self.inner.tier()?;
        let meta = tier.fresh_meta(id)?;
        if meta.sha256 != crate::store::hex(&rec.sha256) || meta.bytes != rec.bytes {
            return Err(Error::Cloud(format!(
                "the cloud copy of segment {id} describes other bytes (SHA-256 {}, {} bytes)",
                meta.sha256, meta.bytes
            )));
        }
        let layout = rec.layout();
        for &index in chunks {
            let ext = *rec
                .extents
                .get(index as usize)
                .ok_or_else(|| Error::Invalid(format!("segment {id} has no chunk {index}")))?;
            let start = layout.start_of(index as usize);
            let plain = tier.read_range_with(id, start..start + u64::from(ext.len), false)?;
            if plain.len() as u64 != u64::from(ext.len) {
                return Err(Error::Cloud(format!(
                    "the cloud copy of segment {id} is short at chunk {index}"
                )));
            }
            // An encrypted store seals the chunk again, under a fresh random nonce; a Blocks
            // chunk gets its block CRC trailer again.
            let form = ChunkForm::of(rec.block_crcs, self.inner.crypt.is_some());
            let (header, bytes) = match (&self.inner.crypt, form) {
                (Some(c), _) => {
                    let sealed =
                        c.segment(id)
                            .seal(crate::crypt::DOMAIN_CHUNK, u64::from(index), &[&plain]);
                    (RecordHeader::new(Kind::Chunk, &sealed, id, index), sealed)
                }
                (None, ChunkForm::Blocks) => {
                    let trailer = build_trailer(&[&plain]);
                    let header =
                        RecordHeader::blocks_chunk(plain.len() as u32, &trailer, id, index);
                    let mut bytes = plain;
                    bytes.extend_from_slice(&trailer);
                    (header, bytes)
                }
                (None, _) => (RecordHeader::new(Kind::Chunk, &plain, id, index), plain),
            };
            if header.len != ext.len + form.extra(ext.len) {
                return Err(Error::Cloud(format!(
                    "the cloud copy of segment {id} is short at chunk {index}"
                )));
            }
            fail::point("repair.fetched");
            // Never write into a segment that is being evicted or deleted meanwhile.
            let flags = self.inner.catalog.read().get(id).map_or(0, |e| e.flags);
            if flags & FLAG_EVICTED != 0 {
                return Ok(());
            }
            let vol = self
                .inner
                .volume(ext.volume_id)
                .ok_or_else(|| Error::Unavailable {
                    segment: id,
                    reason: format!("volume {} is missing", ext.volume_id),
                })?;
            vol.rewrite_record(ext.offset, &header, &bytes)?;
            fail::point("repair.written");
        }
        match self.inner.check_local(id, &mut |_| true) {
            Checked::Whole | Checked::NoLocalCopy => Ok(()),
            other => Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: format!("still not whole after the repair: {other:?}"),
            }),
        }
    }
}
