//! The change record: a durable change to a committed segment (category, tag, case, legal
//! hold, cloud copy, eviction, deletion). It carries the operation (for the audit trail) and
//! the segment's whole mutable state *after* it, so applying it needs no earlier state and
//! replaying it twice is harmless.
//!
//! ```text
//! payload (after the 32-byte record header; kind = 4, a = segment id):
//!   u16  change format version (1)
//!   u64  lsn            store-wide sequence number (shared with commit records)
//!   i64  time_us        when the change was made
//!   str16 actor         who made it (CLI --actor, token name over HTTP)
//!   u8   op, str16 arg  the operation and its argument (a name, a case id, or empty)
//!   state after the change:
//!     list categories, list tags, list cases   (u16 count + str16 each)
//!     list holds        case ids holding the segment
//!     u32  flags        bit 0 uploaded (a verified cloud copy exists), bit 1 evicted
//!                       (no local bytes), bit 2 deleted
//!   u32  freed count, then per volume: u32 volume id, u64 chunk bytes freed
//! ```

use super::{DecodeError, Reader, Writer};

pub const CHANGE_VERSION: u16 = 1;

/// Segment state flags (also kept in the catalog entry).
pub const FLAG_UPLOADED: u32 = 1;
pub const FLAG_EVICTED: u32 = 2;
pub const FLAG_DELETED: u32 = 4;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    AddCategory = 1,
    RemoveCategory = 2,
    AddTag = 3,
    RemoveTag = 4,
    AddCase = 5,
    RemoveCase = 6,
    Hold = 7,
    Release = 8,
    Uploaded = 9,
    Evicted = 10,
    Deleted = 11,
    /// The state re-written unchanged (when the volume holding the last change is dropped).
    Restate = 12,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        use Op::*;
        Some(match v {
            1 => AddCategory,
            2 => RemoveCategory,
            3 => AddTag,
            4 => RemoveTag,
            5 => AddCase,
            6 => RemoveCase,
            7 => Hold,
            8 => Release,
            9 => Uploaded,
            10 => Evicted,
            11 => Deleted,
            12 => Restate,
            _ => return None,
        })
    }

    /// The name used in the audit log and JSON.
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            AddCategory => "categorize",
            RemoveCategory => "uncategorize",
            AddTag => "tag",
            RemoveTag => "untag",
            AddCase => "case",
            RemoveCase => "uncase",
            Hold => "hold",
            Release => "release",
            Uploaded => "upload",
            Evicted => "evict",
            Deleted => "delete",
            Restate => "restate",
        }
    }
}

/// A segment's mutable state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentState {
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub cases: Vec<String>,
    pub holds: Vec<String>,
    pub flags: u32,
}

impl SegmentState {
    pub fn encode(&self, w: &mut Writer) {
        w.str_list(&self.categories);
        w.str_list(&self.tags);
        w.str_list(&self.cases);
        w.str_list(&self.holds);
        w.u32(self.flags);
    }

    pub fn decode(r: &mut Reader) -> Result<SegmentState, DecodeError> {
        Ok(SegmentState {
            categories: r.str_list()?,
            tags: r.str_list()?,
            cases: r.str_list()?,
            holds: r.str_list()?,
            flags: r.u32()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub segment_id: u64,
    pub lsn: u64,
    pub time_us: i64,
    pub actor: String,
    pub op: Op,
    pub arg: String,
    pub state: SegmentState,
    /// Chunk bytes this change freed, per volume (eviction and deletion).
    pub freed: Vec<(u32, u64)>,
}

impl ChangeRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(CHANGE_VERSION);
        w.u64(self.lsn);
        w.i64(self.time_us);
        w.str16(&self.actor);
        w.u8(self.op as u8);
        w.str16(&self.arg);
        self.state.encode(&mut w);
        w.u32(self.freed.len() as u32);
        for (v, b) in &self.freed {
            w.u32(*v);
            w.u64(*b);
        }
        w.buf
    }

    /// Decodes a payload; `segment_id` comes from the record header.
    pub fn decode(payload: &[u8], segment_id: u64) -> Result<ChangeRecord, DecodeError> {
        let mut r = Reader::new(payload, "change record");
        let version = r.u16()?;
        if version != CHANGE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "change record",
                found: u32::from(version),
                supported: u32::from(CHANGE_VERSION),
            });
        }
        let lsn = r.u64()?;
        let time_us = r.i64()?;
        let actor = r.str16()?;
        let op = Op::from_u8(r.u8()?)
            .ok_or_else(|| DecodeError::invalid("change record", "unknown operation"))?;
        let arg = r.str16()?;
        let state = SegmentState::decode(&mut r)?;
        let n = r.u32()? as usize;
        if n > r.remaining() / 12 {
            return Err(DecodeError::Truncated("change record"));
        }
        let mut freed = Vec::with_capacity(n);
        for _ in 0..n {
            freed.push((r.u32()?, r.u64()?));
        }
        r.finish()?;
        Ok(ChangeRecord {
            segment_id,
            lsn,
            time_us,
            actor,
            op,
            arg,
            state,
            freed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_records_round_trip_and_truncation_is_detected() {
        let c = ChangeRecord {
            segment_id: 7,
            lsn: 99,
            time_us: 1_700_000_000_000_000,
            actor: "sgt.jones".into(),
            op: Op::Hold,
            arg: "CASE-1".into(),
            state: SegmentState {
                categories: vec!["evidential".into()],
                tags: vec![],
                cases: vec!["CASE-1".into()],
                holds: vec!["CASE-1".into()],
                flags: FLAG_UPLOADED,
            },
            freed: vec![(3, 4096)],
        };
        let p = c.encode();
        assert_eq!(ChangeRecord::decode(&p, 7).unwrap(), c);
        for n in 0..p.len() {
            assert!(ChangeRecord::decode(&p[..n], 7).is_err());
        }
    }
}
