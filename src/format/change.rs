//! The change record: a durable change to a committed segment (category, tag, case, legal
//! hold, cloud copy, eviction, deletion). It carries the operation (for the audit trail) and
//! either the segment's whole mutable state *after* it (a full record), or only the LSN of
//! the state it applies to (a delta record: the operation and its argument are the change).
//! Replaying either twice is harmless; a delta applies only on top of exactly its base.
//!
//! ```text
//! payload (after the 32-byte record header; kind = 4, a = segment id):
//!   u16  change format version (2, or 3 for a full record of a pinned segment; versions 1
//!        and 2 are read as well)
//!   u64  lsn            store-wide sequence number (shared with commit records)
//!   i64  time_us        when the change was made
//!   str16 actor         who made it (CLI --actor, token name over HTTP)
//!   u8   op, str16 arg  the operation and its argument (a name, a case id, or empty)
//!   version 2 only: u8 form   0 = delta, 1 = full
//!   delta:  u64 base_lsn      the LSN of the state this change applies to (label ops only)
//!   full (and every version 1 record): the state after the change:
//!     list categories, list tags, list cases   (u16 count + str16 each)
//!     list holds        case ids holding the segment
//!     u32  flags        bit 0 uploaded (a verified cloud copy exists), bit 1 evicted
//!                       (no local bytes), bit 2 deleted
//!     version 3 only: i64 pinned_until   kept local until then (µs; i64::MAX: no end)
//!   u32  freed count, then per volume: u32 volume id, u64 chunk bytes freed (of a
//!        `Restored` record: chunk bytes *taken*, the restored copy's chunks per volume)
//! ```
//!
//! Versions: a full record is written as version 3 only when its state carries a pin, so a
//! store that never pins writes exactly what earlier builds wrote; a version-2 (or 1) full
//! record has no pin.
//!
//! Invariant: a list longer than a u16 count can say is never written (encoding fails);
//! changes keep lists within `MAX_LABELS` long before that.

use super::{DecodeError, Reader, Writer};

pub const CHANGE_VERSION: u16 = 2;
/// A full record whose state carries a pin (`pinned_until`).
pub const CHANGE_VERSION_PINNED: u16 = 3;
/// `pinned_until` of a pin without an end.
pub const PIN_FOREVER: i64 = i64::MAX;
/// The first version: always the full state, no form byte.
pub const CHANGE_VERSION_1: u16 = 1;

const FORM_DELTA: u8 = 0;
const FORM_FULL: u8 = 1;

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
    /// Kept local (not evicted by retention) until `pinned_until`; the argument is that
    /// time (RFC 3339) or empty for no end. Full record.
    Pin = 13,
    /// The pin taken away. Full record.
    Unpin = 14,
    /// An evicted segment's bytes brought back from its cloud copy into local volumes: the
    /// segment's newest commit record names the restored chunks, `freed` lists the chunk
    /// bytes they take per volume, and the state no longer has `FLAG_EVICTED`. Full record.
    Restored = 15,
}

impl Op {
    /// Whether the op changes one label (and so may be written as a delta).
    pub fn is_label(self) -> bool {
        use Op::*;
        matches!(
            self,
            AddCategory
                | RemoveCategory
                | AddTag
                | RemoveTag
                | AddCase
                | RemoveCase
                | Hold
                | Release
        )
    }

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
            13 => Pin,
            14 => Unpin,
            15 => Restored,
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
            Pin => "pin",
            Unpin => "unpin",
            Restored => "restore",
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
    /// Kept local until this time (µs since the epoch; [`PIN_FOREVER`]: no end), if pinned.
    pub pinned_until: Option<i64>,
}

fn add(list: &mut Vec<String>, v: &str) -> bool {
    match list.binary_search_by(|x| x.as_str().cmp(v)) {
        Ok(_) => false,
        Err(i) => {
            list.insert(i, v.to_string());
            true
        }
    }
}

fn remove(list: &mut Vec<String>, v: &str) -> bool {
    match list.binary_search_by(|x| x.as_str().cmp(v)) {
        Ok(i) => {
            list.remove(i);
            true
        }
        Err(_) => false,
    }
}

impl SegmentState {
    /// Applies a label op with its argument; returns whether the state changed. Other ops
    /// change nothing here (their records carry the full state).
    pub fn apply(&mut self, op: Op, arg: &str) -> bool {
        match op {
            Op::AddCategory => add(&mut self.categories, arg),
            Op::RemoveCategory => remove(&mut self.categories, arg),
            Op::AddTag => add(&mut self.tags, arg),
            Op::RemoveTag => remove(&mut self.tags, arg),
            Op::AddCase => add(&mut self.cases, arg),
            Op::RemoveCase => remove(&mut self.cases, arg),
            Op::Hold => {
                // A hold names its case; the case goes on the segment too.
                let c = add(&mut self.cases, arg);
                add(&mut self.holds, arg) || c
            }
            Op::Release => remove(&mut self.holds, arg),
            _ => false,
        }
    }

    /// The lengths of its lists: categories, tags, cases, holds.
    pub fn list_lens(&self) -> [usize; 4] {
        [
            self.categories.len(),
            self.tags.len(),
            self.cases.len(),
            self.holds.len(),
        ]
    }

    /// The longest of its lists.
    pub fn longest_list(&self) -> usize {
        self.list_lens().into_iter().max().unwrap_or(0)
    }

    /// Whether a pin keeps the segment local at `now_us`.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn pinned_at(&self, now_us: i64) -> bool {
        self.pinned_until.is_some_and(|t| t > now_us)
    }

    /// Encodes the state; `with_pin`: the version-3 form, with `pinned_until` (0: none).
    pub fn encode(&self, w: &mut Writer, with_pin: bool) {
        w.str_list(&self.categories);
        w.str_list(&self.tags);
        w.str_list(&self.cases);
        w.str_list(&self.holds);
        w.u32(self.flags);
        if with_pin {
            w.i64(self.pinned_until.unwrap_or(0));
        }
    }

    pub fn decode(r: &mut Reader, with_pin: bool) -> Result<SegmentState, DecodeError> {
        Ok(SegmentState {
            categories: r.str_list()?,
            tags: r.str_list()?,
            cases: r.str_list()?,
            holds: r.str_list()?,
            flags: r.u32()?,
            pinned_until: if with_pin {
                Some(r.i64()?).filter(|t| *t != 0)
            } else {
                None
            },
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
    /// The state after the change. Of a decoded delta record: empty until the catalog
    /// applies it to its base.
    pub state: SegmentState,
    /// A delta record: the LSN of the state it applies to (`None`: a full record).
    pub base_lsn: Option<u64>,
    /// Chunk bytes this change freed, per volume (eviction and deletion).
    pub freed: Vec<(u32, u64)>,
}

/// A change record that cannot be written as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a label list of {0} entries is longer than a change record can hold")]
    ListTooLong(usize),
    #[error("only a label change can be written as a delta")]
    NotALabelChange,
}

impl ChangeRecord {
    /// Encodes the record (version 2, or 3 for a full state with a pin); a list too long for
    /// its count is refused, never cut.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        let pinned = self.base_lsn.is_none() && self.state.pinned_until.is_some();
        w.u16(if pinned {
            CHANGE_VERSION_PINNED
        } else {
            CHANGE_VERSION
        });
        self.encode_head(&mut w);
        match self.base_lsn {
            Some(base) => {
                if !self.op.is_label() {
                    return Err(EncodeError::NotALabelChange);
                }
                w.u8(FORM_DELTA);
                w.u64(base);
            }
            None => {
                w.u8(FORM_FULL);
                let n = self.state.longest_list();
                if n > usize::from(u16::MAX) {
                    return Err(EncodeError::ListTooLong(n));
                }
                self.state.encode(&mut w, pinned);
            }
        }
        self.encode_freed(&mut w);
        Ok(w.buf)
    }

    /// Encodes the record as version 1 (full state): for tests of old stores.
    #[doc(hidden)]
    pub fn encode_v1(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(CHANGE_VERSION_1);
        self.encode_head(&mut w);
        self.state.encode(&mut w, false);
        self.encode_freed(&mut w);
        w.buf
    }

    fn encode_head(&self, w: &mut Writer) {
        w.u64(self.lsn);
        w.i64(self.time_us);
        w.str16(&self.actor);
        w.u8(self.op as u8);
        w.str16(&self.arg);
    }

    fn encode_freed(&self, w: &mut Writer) {
        w.u32(self.freed.len() as u32);
        for (v, b) in &self.freed {
            w.u32(*v);
            w.u64(*b);
        }
    }

    /// Decodes a payload; `segment_id` comes from the record header.
    pub fn decode(payload: &[u8], segment_id: u64) -> Result<ChangeRecord, DecodeError> {
        let mut r = Reader::new(payload, "change record");
        let version = r.u16()?;
        if !(CHANGE_VERSION_1..=CHANGE_VERSION_PINNED).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "change record",
                found: u32::from(version),
                supported: u32::from(CHANGE_VERSION_PINNED),
            });
        }
        let lsn = r.u64()?;
        let time_us = r.i64()?;
        let actor = r.str16()?;
        let op = Op::from_u8(r.u8()?)
            .ok_or_else(|| DecodeError::invalid("change record", "unknown operation"))?;
        let arg = r.str16()?;
        let form = if version == CHANGE_VERSION_1 {
            FORM_FULL
        } else {
            r.u8()?
        };
        let (state, base_lsn) = match form {
            FORM_FULL => (
                SegmentState::decode(&mut r, version == CHANGE_VERSION_PINNED)?,
                None,
            ),
            FORM_DELTA if op.is_label() && version != CHANGE_VERSION_PINNED => {
                (SegmentState::default(), Some(r.u64()?))
            }
            FORM_DELTA => {
                return Err(DecodeError::invalid(
                    "change record",
                    "a delta of an operation that is not a label change",
                ))
            }
            _ => return Err(DecodeError::invalid("change record", "unknown form")),
        };
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
            base_lsn,
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
                pinned_until: None,
            },
            base_lsn: None,
            freed: vec![(3, 4096)],
        };
        let p = c.encode().unwrap();
        assert_eq!(ChangeRecord::decode(&p, 7).unwrap(), c);
        for n in 0..p.len() {
            assert!(ChangeRecord::decode(&p[..n], 7).is_err());
        }
        // Version 1 (always full) still reads the same.
        let old = c.encode_v1();
        assert_eq!(ChangeRecord::decode(&old, 7).unwrap(), c);
        // A delta holds no state, only its base.
        let d = ChangeRecord {
            op: Op::AddTag,
            arg: "arrest".into(),
            state: SegmentState::default(),
            base_lsn: Some(98),
            freed: vec![],
            ..c.clone()
        };
        let p = d.encode().unwrap();
        assert!(p.len() < 64, "{}", p.len());
        assert_eq!(ChangeRecord::decode(&p, 7).unwrap(), d);
        let bad = ChangeRecord {
            op: Op::Evicted,
            ..d.clone()
        };
        assert_eq!(bad.encode(), Err(EncodeError::NotALabelChange));
        let huge = ChangeRecord {
            state: SegmentState {
                tags: vec!["t".into(); 70_000],
                ..SegmentState::default()
            },
            ..c
        };
        assert_eq!(huge.encode(), Err(EncodeError::ListTooLong(70_000)));
    }

    #[test]
    fn a_pinned_state_is_a_version_3_record_and_others_stay_version_2() {
        let mut c = ChangeRecord {
            segment_id: 9,
            lsn: 5,
            time_us: 1,
            actor: "a".into(),
            op: Op::Pin,
            arg: String::new(),
            state: SegmentState {
                pinned_until: Some(PIN_FOREVER),
                flags: FLAG_UPLOADED,
                ..SegmentState::default()
            },
            base_lsn: None,
            freed: vec![],
        };
        let p = c.encode().unwrap();
        assert_eq!(u16::from_le_bytes([p[0], p[1]]), CHANGE_VERSION_PINNED);
        assert_eq!(ChangeRecord::decode(&p, 9).unwrap(), c);
        for n in 0..p.len() {
            assert!(ChangeRecord::decode(&p[..n], 9).is_err());
        }
        c.op = Op::Restored;
        c.state.pinned_until = None;
        c.freed = vec![(4, 1 << 20)];
        let p = c.encode().unwrap();
        assert_eq!(u16::from_le_bytes([p[0], p[1]]), CHANGE_VERSION);
        assert_eq!(ChangeRecord::decode(&p, 9).unwrap(), c);
    }
}
