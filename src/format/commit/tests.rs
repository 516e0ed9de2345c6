//! Unit tests of the commit record: round trips of every version, truncation, layouts, flags.

use super::*;

pub(crate) fn sample() -> CommitRecord {
    CommitRecord {
        segment_id: 9,
        lsn: 77,
        committed_us: 1_000,
        bytes: 10 + 4064,
        sha256: [3; 32],
        chunk_capacity: 4064,
        meta: SegmentMeta {
            officer: "MET-004217".into(),
            device: "AX-B3-00123".into(),
            start_us: 5,
            end_us: 6,
            gps: vec![
                GpsFix {
                    time_us: 5,
                    lat_e7: 515_074_000,
                    lon_e7: -1_278_000,
                },
                GpsFix {
                    time_us: 5_000_005,
                    lat_e7: -899_999_999,
                    lon_e7: 1_800_000_000,
                },
            ],
            cases: vec!["C1".into()],
            tags: vec![],
            categories: vec!["evidential".into()],
        },
        extents: vec![
            Extent {
                volume_id: 1,
                offset: 4064,
                len: 4064,
            },
            Extent {
                volume_id: 2,
                offset: 8160,
                len: 10,
            },
        ],
        block_crcs: false,
        one_sync: false,
        durable_to: 0,
        actor: None,
    }
}

#[test]
fn commit_round_trips_with_and_without_track() {
    let c = sample();
    let enc = c.encode();
    assert_eq!(CommitRecord::decode(&enc, true).unwrap(), c);
    let head = CommitRecord::decode(&enc, false).unwrap();
    assert_eq!(head.extents, c.extents);
    assert!(head.meta.gps.is_empty());
}

#[test]
fn truncated_commit_never_panics() {
    let enc = sample().encode();
    for n in 0..enc.len() {
        assert!(CommitRecord::decode(&enc[..n], true).is_err(), "len {n}");
    }
}

#[test]
fn uniform_chunks_are_written_as_version_1_short_ones_as_version_2() {
    let c = sample();
    assert_eq!(&c.encode()[..2], &COMMIT_VERSION.to_le_bytes());
    assert_eq!(c.layout().index_of(4064), Some(1));
    let mut v = sample();
    v.extents[0].len = 100;
    v.extents.push(Extent {
        volume_id: 2,
        offset: 12_288,
        len: 4064,
    });
    v.bytes = 100 + 10 + 4064;
    let enc = v.encode();
    assert_eq!(&enc[..2], &COMMIT_VERSION_VARIABLE.to_le_bytes());
    assert_eq!(CommitRecord::decode(&enc, true).unwrap(), v);
    let l = v.layout();
    let want = [(0, 0), (99, 0), (100, 1), (109, 1), (110, 2), (4173, 2)];
    for (pos, index) in want {
        assert_eq!(l.index_of(pos), Some(index), "pos {pos}");
    }
    assert_eq!(l.start_of(2), 110);
    // The same short chunk under version 1 is refused.
    let mut as_v1 = enc.clone();
    as_v1[..2].copy_from_slice(&COMMIT_VERSION.to_le_bytes());
    assert!(CommitRecord::decode(&as_v1, true).is_err());
    // A version 2 chunk may still not exceed the capacity or be empty.
    let mut big = v.clone();
    big.extents[0].len = 4065;
    big.bytes += 3965;
    assert!(CommitRecord::decode(&big.encode(), true).is_err());
}

#[test]
fn block_crc_segments_are_version_3_with_any_chunk_lengths() {
    let mut v = sample();
    v.block_crcs = true;
    v.extents[0].len = 100;
    v.bytes = 110;
    let enc = v.encode();
    assert_eq!(&enc[..2], &COMMIT_VERSION_BLOCKS.to_le_bytes());
    assert_eq!(CommitRecord::decode(&enc, true).unwrap(), v);
    for (block_crcs, one_sync) in [(false, true), (true, true)] {
        let mut w = v.clone();
        (w.block_crcs, w.one_sync, w.durable_to) = (block_crcs, one_sync, 123_456);
        assert_eq!(CommitRecord::decode(&w.encode(), true).unwrap(), w);
    }
    // An unknown flag is refused as a newer format, not taken for damage.
    let mut flagged = enc.clone();
    flagged[86] |= 0x80;
    assert!(matches!(
        CommitRecord::decode(&flagged, true),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let mut future = enc.clone();
    future[..2].copy_from_slice(&4u16.to_le_bytes());
    assert!(matches!(
        CommitRecord::decode(&future, true),
        Err(DecodeError::UnsupportedVersion { found: 4, .. })
    ));
}

#[test]
fn extents_must_add_up_to_the_segment_length() {
    let mut c = sample();
    c.bytes += 1;
    assert!(CommitRecord::decode(&c.encode(), true).is_err());
}

#[test]
fn an_actor_makes_version_3_and_round_trips_with_every_flag() {
    for (block_crcs, one_sync) in [(false, false), (true, false), (true, true)] {
        let mut v = sample();
        (v.block_crcs, v.one_sync, v.durable_to) = (block_crcs, one_sync, 99);
        v.actor = Some("dock-07 (Brixton)".into());
        let enc = v.encode();
        assert_eq!(&enc[..2], &COMMIT_VERSION_BLOCKS.to_le_bytes());
        assert_eq!(CommitRecord::decode(&enc, true).unwrap(), v);
        assert_eq!(CommitRecord::decode(&enc, false).unwrap().actor, v.actor);
        // A record cut inside the actor is truncated, never read as another field.
        for cut in 87..=96 {
            assert!(CommitRecord::decode(&enc[..cut], false).is_err(), "cut at {cut}");
        }
    }
}
