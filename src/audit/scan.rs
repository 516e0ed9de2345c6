//! Walking the entries of one audit file's bytes: valid frames in order, damaged regions
//! skipped by resynchronising on the next frame that decodes completely, and the invalid
//! tail (bytes after the last valid entry with no valid entry after them).
//!
//! Invariant: only frames that pass the magic, length, CRC and body checks are reported as
//! entries; a damaged region is reported, never silently skipped.

use super::format::{decode_frame, Frame, RawEntry, FRAME_MAGIC};

/// Something found in the file.
#[derive(Debug)]
pub enum Item {
    Entry {
        offset: usize,
        #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
        end: usize,
        entry: RawEntry,
    },
    /// Bytes `from..to` hold no valid entry, but a valid one starts at `to`.
    Damage {
        from: usize,
        to: usize,
        what: String,
    },
}

/// Invalid bytes from `from` to the end, with no valid entry after them: a torn write, or
/// damage to the last entries.
#[derive(Debug, Clone)]
pub struct Tail {
    pub from: usize,
    pub what: String,
}

/// Walks `data` from `pos` (a frame boundary) and calls `f` for every entry and damaged
/// region. Returns the end of the last valid entry (`pos` if none) and the invalid tail.
pub fn scan(data: &[u8], mut pos: usize, mut f: impl FnMut(Item)) -> (usize, Option<Tail>) {
    let mut end = pos;
    while pos < data.len() {
        match decode_frame(data, pos) {
            Frame::Entry(entry, next) => {
                f(Item::Entry {
                    offset: pos,
                    end: next,
                    entry,
                });
                pos = next;
                end = next;
            }
            Frame::Bad(what) => match resync(data, pos + 1) {
                Some(next) => {
                    f(Item::Damage {
                        from: pos,
                        to: next,
                        what,
                    });
                    pos = next;
                }
                None => return (end, Some(Tail { from: pos, what })),
            },
        }
    }
    (end, None)
}

/// The first offset at or after `from` where a complete, valid frame starts.
fn resync(data: &[u8], mut from: usize) -> Option<usize> {
    while let Some(i) = data
        .get(from..)?
        .windows(FRAME_MAGIC.len())
        .position(|w| w == FRAME_MAGIC)
    {
        let at = from + i;
        if let Frame::Entry(..) = decode_frame(data, at) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::format::GENESIS;
    use super::*;

    fn frames(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        let mut prev = GENESIS;
        for i in 0..n {
            let mut e = RawEntry {
                index: i,
                time_us: i as i64,
                prev_hash: prev,
                actor: "a".into(),
                action: "read".into(),
                segment: None,
                details: "{}".into(),
                hash: [0; 32],
            };
            e.hash = e.compute_hash();
            prev = e.hash;
            starts.push(out.len());
            out.extend_from_slice(&e.encode_frame());
        }
        (out, starts)
    }

    fn indexes(data: &[u8]) -> (Vec<u64>, usize, usize, Option<Tail>) {
        let mut ix = Vec::new();
        let mut damage = 0;
        let (end, tail) = scan(data, 0, |it| match it {
            Item::Entry { entry, .. } => ix.push(entry.index),
            Item::Damage { .. } => damage += 1,
        });
        (ix, damage, end, tail)
    }

    #[test]
    fn damage_is_skipped_and_reported_and_a_torn_tail_is_found() {
        let (data, starts) = frames(5);
        let (ix, damage, end, tail) = indexes(&data);
        assert_eq!((ix, damage, end), (vec![0, 1, 2, 3, 4], 0, data.len()));
        assert!(tail.is_none());
        // A byte of entry 2 damaged: 2 is skipped, 3 and 4 are found again.
        let mut d = data.clone();
        d[starts[2] + 20] ^= 0x10;
        let (ix, damage, end, tail) = indexes(&d);
        assert_eq!((ix, damage, end), (vec![0, 1, 3, 4], 1, data.len()));
        assert!(tail.is_none());
        // Cut in the middle of entry 4, then garbage: a tail after entry 3.
        let mut t = data[..starts[4] + 7].to_vec();
        t.extend_from_slice(&[0u8; 100]);
        let (ix, _, end, tail) = indexes(&t);
        assert_eq!((ix, end), (vec![0, 1, 2, 3], starts[4]));
        assert_eq!(tail.map(|t| t.from), Some(starts[4]));
    }
}
