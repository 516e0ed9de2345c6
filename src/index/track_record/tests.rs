//! Tests of `index::track_record`: both record forms round-trip, every damaged byte is
//! caught, and blocks name their fixes, times and boxes.

use super::*;

fn walk(n: i64) -> Vec<GpsFix> {
    (0..n)
        .map(|i| GpsFix {
            time_us: 1_700_000_000_000_000 + i * 5_000_000 + (i % 3),
            lat_e7: 515_080_000 + (i as i32) * 37,
            lon_e7: -1_247_000 - (i as i32) * 51,
        })
        .collect()
}

#[test]
fn both_forms_round_trip_and_every_damaged_byte_is_detected() {
    for n in [0, 1, 31, 32, 33, 100] {
        let fixes = walk(n);
        for rec in [encode(9, &fixes), encode_v1(9, &fixes)] {
            let t = TrackRef::parse(&rec).unwrap();
            assert_eq!((t.id, t.count), (9, n as u32));
            assert_eq!(t.to_vec().unwrap(), fixes, "{n} fixes");
            for i in 0..rec.len() {
                let mut bad = rec.clone();
                bad[i] ^= 0x10;
                let caught = TrackRef::parse(&bad).and_then(|t| t.to_vec()).is_err();
                assert!(caught, "{n} fixes, byte {i} of {}", rec.len());
            }
        }
    }
    // A regular walking track: about 5 bytes a fix, the directory included.
    let rec = encode(9, &walk(100));
    assert!(rec.len() < 100 * 5 + 4 * DIR_ENTRY + 40, "{}", rec.len());
}

#[test]
fn blocks_name_their_fixes_times_and_boxes() {
    let fixes = walk(70);
    let rec = encode(3, &fixes);
    let t = TrackRef::parse(&rec).unwrap();
    let blocks: Vec<Block> = t.blocks().map(Result::unwrap).collect();
    assert_eq!(blocks.len(), 3);
    for (b, want) in blocks.iter().zip(fixes.chunks(BLOCK_FIXES)) {
        let got: Vec<GpsFix> = b.fixes().unwrap().map(Result::unwrap).collect();
        assert_eq!(got, want);
        let (first, last) = (want[0], want[want.len() - 1]);
        assert_eq!(b.times, Some((first.time_us, last.time_us)));
        assert_eq!(b.bbox, rect_of(want));
    }
    // Version 1: one block, times unknown.
    let old = encode_v1(3, &fixes);
    let t = TrackRef::parse(&old).unwrap();
    let blocks: Vec<Block> = t.blocks().map(Result::unwrap).collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].times, None);
    assert_eq!(blocks[0].bbox, t.bbox);
}
