//! Targets for the catalog's files: checkpoint files and bodies (segment table, dedup index,
//! segment states, label lists and spatial postings), and the track file.

use super::fix_crc;
use crate::catalog::checkpoint::{decode_body, decode_file, encode_body};
use crate::catalog::search::run;
use crate::catalog::Catalog;
use crate::index::query::Query;
use crate::index::track_record::{BLOCKED, DIR_ENTRY, V2_HEAD};
use crate::index::tracks::{encode as encode_track, TrackRef, HEADER_LEN as TRACKS_HEADER};
use crate::index::LabelKind;

/// Length of a checkpoint file header (FORMAT.md §9).
const CKPT_HEADER: usize = 64;

/// A whole checkpoint file (header and zstd body).
pub fn checkpoint_file(data: &[u8]) {
    if let Ok(body) = decode_file(data) {
        checkpoint_body(&body);
    }
    // With the body length and both CRCs made right, mutations reach zstd and the body.
    let mut fixed = data.to_vec();
    if fixed.len() >= CKPT_HEADER {
        let body_len = (fixed.len() - CKPT_HEADER) as u64;
        fixed[16..24].copy_from_slice(&body_len.to_le_bytes());
        let len = fixed.len();
        fix_crc(&mut fixed, CKPT_HEADER, len, 12);
        fix_crc(&mut fixed, 0, 60, 60);
        if let Ok(body) = decode_file(&fixed) {
            checkpoint_body(&body);
        }
    }
}

/// An uncompressed checkpoint body. A body that decodes must re-encode to a fixed point and
/// answer queries without panicking.
pub fn checkpoint_body(body: &[u8]) {
    let Ok((cat, store_id, _tracks_len)) = decode_body(body) else {
        return;
    };
    let enc = encode_body(&cat, &store_id);
    let (again, id_again, _) = match decode_body(&enc) {
        Ok(x) => x,
        Err(e) => panic!("a re-encoded checkpoint does not decode: {e}"),
    };
    assert_eq!(id_again, store_id);
    assert!(
        encode_body(&again, &id_again) == enc,
        "encoding a decoded checkpoint is not a fixed point"
    );
    queries(&cat);
}

/// Runs a handful of queries of every plan against a decoded catalog.
pub(super) fn queries(cat: &Catalog) {
    let mut qs = vec![
        Query::new(),
        Query::new().limit(2),
        Query::new().from(0).to(i64::MAX),
        Query::new().from(i64::MIN).to(0).limit(1),
        Query::new().near(51.5, -0.12, 5_000.0),
        Query::new().bbox(-90.0, -180.0, 90.0, 180.0),
        Query::new().bbox(-10.0, 170.0, 10.0, -170.0).limit(3),
    ];
    if let Some(name) = cat.names.names().first() {
        qs.push(Query::new().officer(&**name).limit(1));
        qs.push(Query::new().device(&**name).from(0));
    }
    for (kind, lists) in [LabelKind::Case, LabelKind::Tag, LabelKind::Category]
        .into_iter()
        .zip(cat.index.labels.iter())
    {
        if let Some(label) = lists.keys().next() {
            let q = Query::new().limit(2);
            qs.push(match kind {
                LabelKind::Case => q.case(label),
                LabelKind::Tag => q.tag(label),
                LabelKind::Category => q.category(label).near(0.0, 0.0, 1e7),
            });
        }
    }
    for q in qs {
        // A second page, through the cursor, as a client pages through results.
        if let Ok(page) = run(cat, &q) {
            if let Some(next) = page.next {
                let _ = run(cat, &q.after(next));
            }
        }
    }
}

/// A whole track file (64-byte header, then records back to back).
pub fn tracks(data: &[u8]) {
    walk_tracks(&mut data.to_vec(), false);
    walk_tracks(&mut data.to_vec(), true);
}

fn walk_tracks(data: &mut [u8], fix: bool) {
    let mut pos = (TRACKS_HEADER as usize).min(data.len());
    while pos < data.len() {
        // Bit 31 of the length marks a version-2 record (FORMAT §9a).
        let raw = le_u32(data, pos);
        let len = (raw & !BLOCKED) as usize;
        if fix {
            fix_record_crcs(data, pos, raw & BLOCKED != 0);
        }
        let Ok(t) = TrackRef::parse(data.get(pos..).unwrap_or_default()) else {
            return;
        };
        let decoded: Vec<_> = t.fixes().collect();
        let all = t.to_vec();
        assert_eq!(all.is_ok(), decoded.iter().all(|f| f.is_ok()));
        if let Ok(fixes) = all {
            assert_eq!(fixes.len(), t.count as usize);
            let enc = encode_track(t.id, &fixes);
            let back = TrackRef::parse(&enc).and_then(|b| Ok((b.id, b.to_vec()?)));
            assert_eq!(back, Ok((t.id, fixes)), "track record round trip");
        }
        pos += 4 + len;
    }
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    data.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Recomputes the CRCs of the track record at `pos` so that changes reach the decoders
/// behind them: the whole body's (version 1), or the head's and each block's (version 2).
fn fix_record_crcs(data: &mut [u8], pos: usize, blocked: bool) {
    let end = pos
        .saturating_add(4)
        .saturating_add((le_u32(data, pos) & !BLOCKED) as usize)
        .min(data.len());
    let body = pos + 8;
    if !blocked {
        fix_crc(data, body, end, pos + 4);
        return;
    }
    let count = le_u32(data, body + 24);
    let per = data
        .get(body + 28..body + 30)
        .map_or(1, |b| u16::from_le_bytes([b[0], b[1]]))
        .max(1);
    let n = count.div_ceil(u32::from(per)) as usize;
    let dir = body + V2_HEAD;
    let blocks = dir.saturating_add(n.saturating_mul(DIR_ENTRY)).min(end);
    let mut start = blocks;
    for e in (0..n)
        .map(|i| dir + i * DIR_ENTRY)
        .take_while(|&e| e + 4 <= end)
    {
        let stop = blocks.saturating_add(le_u32(data, e) as usize).min(end);
        fix_crc(data, start.min(stop), stop, e + 4);
        start = stop;
    }
    fix_crc(data, body, blocks, pos + 4);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::GpsFix;

    /// With every CRC of both record forms wiped, the fixer makes them whole again (so the
    /// fuzzer's changes reach the fix decoders).
    #[test]
    fn wiped_track_crcs_are_recomputed() {
        let fixes: Vec<GpsFix> = (0..70)
            .map(|i| GpsFix {
                time_us: 1_700_000_000_000_000 + i * 5_000_000,
                lat_e7: 515_000_000 + i as i32 * 41,
                lon_e7: -1_200_000 - i as i32 * 17,
            })
            .collect();
        for (rec, blocked) in [
            (encode_track(4, &fixes), true),
            (crate::index::track_record::encode_v1(4, &fixes), false),
        ] {
            let mut bad = rec.clone();
            bad[4..8].fill(0);
            if blocked {
                for i in 0..3 {
                    let at = 8 + V2_HEAD + i * DIR_ENTRY + 4;
                    bad[at..at + 4].fill(0);
                }
            }
            assert!(TrackRef::parse(&bad).and_then(|t| t.to_vec()).is_err());
            fix_record_crcs(&mut bad, 0, blocked);
            assert_eq!(bad, rec);
        }
    }
}
