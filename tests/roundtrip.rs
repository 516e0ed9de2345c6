//! Round trips through the library API: sizes around chunk boundaries, large segments,
//! concurrent streams, idempotent ingest, reopen.

mod common;

use common::*;
use footage::{Store, StoreOptions};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};

#[test]
fn sizes_around_chunk_boundaries_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let cap = 64 * 1024 - 32;
    let sizes = [0, 1, cap - 1, cap, cap + 1, 2 * cap, 3 * cap + 7, 1_500_000];
    let mut ids = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let data = random_bytes(i as u64, n);
        let c = store
            .ingest_bytes(meta("MET-1", "AX-1", T0 + i as i64), &data)
            .unwrap();
        assert!(!c.duplicate);
        assert_eq!(c.bytes, n as u64);
        assert_eq!(c.sha256.to_vec(), Sha256::digest(&data).to_vec());
        ids.push((c.id, data));
    }
    let check = |store: &Store| {
        for (id, data) in &ids {
            assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), data);
            let mut r = store.open_segment(*id).unwrap();
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(&all, data);
            // Ranges that start and end on either side of chunk boundaries.
            for (off, len) in [
                (0, 1),
                (cap - 1, 2),
                (cap, cap),
                (cap + 1, 3 * cap),
                (data.len().saturating_sub(1), 10),
            ] {
                if off > data.len() {
                    continue;
                }
                let got = store.read_range(*id, off as u64, len as u64).unwrap();
                let want = &data[off..(off + len).min(data.len())];
                assert_eq!(got, want, "segment {id} range {off}+{len}");
                r.seek(SeekFrom::Start(off as u64)).unwrap();
                let mut buf = vec![0u8; want.len()];
                r.read_exact(&mut buf).unwrap();
                assert_eq!(buf, want);
            }
        }
    };
    check(&store);
    store
        .verify(None, |_| {})
        .map(|r| common::assert_verify_clean(&r, "roundtrip"))
        .unwrap();
    drop(store);
    let store = open_small(dir.path());
    check(&store);
    store.close().unwrap();
    let store = open_small(dir.path());
    assert!(store.open_report().checkpoint.is_some());
    check(&store);
}

#[test]
fn a_segment_of_hundreds_of_megabytes_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(
        dir.path(),
        &StoreOptions {
            volume_size: 64 << 20,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let block = random_bytes(7, 1 << 20);
    let n_blocks = 300;
    let mut w = store.begin_segment(meta("MET-2", "AX-2", T0)).unwrap();
    let mut h = Sha256::new();
    for i in 0..n_blocks {
        let mut b = block.clone();
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        h.update(&b);
        w.write(&b).unwrap();
    }
    let c = w.commit().unwrap();
    assert_eq!(c.bytes, n_blocks as u64 * (1 << 20));
    assert_eq!(c.sha256.to_vec(), h.finalize().to_vec());
    // Spans several 64 MiB volumes, some sealed (mmap) and one active (pread).
    assert!(store.stats().unwrap().volumes >= 5);
    store
        .verify(Some(vec![c.id]), |_| {})
        .map(|r| common::assert_verify_clean(&r, "roundtrip"))
        .unwrap();
    let mid = 150 * (1 << 20) + 12345;
    let got = store.read_range(c.id, mid, 100).unwrap();
    let mut want = block[12345..12445].to_vec();
    if 12345 < 8 {
        want[..8].copy_from_slice(&150u64.to_le_bytes());
    }
    assert_eq!(got, want);
}

#[test]
fn the_same_bytes_from_the_same_device_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let data = random_bytes(1, 200_000);
    let a = store
        .ingest_bytes(meta("MET-1", "AX-1", T0), &data)
        .unwrap();
    let b = store
        .ingest_bytes(meta("MET-1", "AX-1", T0), &data)
        .unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.id, b.id);
    // Another camera delivering the same bytes is another recording.
    let c = store
        .ingest_bytes(meta("MET-1", "AX-9", T0), &data)
        .unwrap();
    assert!(!c.duplicate);
    assert_ne!(c.id, a.id);
    assert_eq!(store.len(), 2);
    drop(store);
    let store = open_small(dir.path());
    let d = store
        .ingest_bytes(meta("MET-1", "AX-1", T0), &data)
        .unwrap();
    assert!(d.duplicate);
    assert_eq!(d.id, a.id);
}

#[test]
fn concurrent_streams_share_volumes_and_all_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for k in 0..6 {
                    let data = random_bytes(
                        t * 100 + k,
                        10_000 + (t * 37_000 + k * 91_000) as usize % 300_000,
                    );
                    let mut w = store
                        .begin_segment(meta(&format!("MET-{t}"), &format!("AX-{t}"), T0))
                        .unwrap();
                    for part in data.chunks(7_777) {
                        w.write(part).unwrap();
                    }
                    out.push((w.commit().unwrap().id, data));
                }
                out
            })
        })
        .collect();
    let all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(store.len(), 48);
    for (id, data) in &all {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), data);
    }
    // Two docks retrying the same file at once store it once.
    let data = random_bytes(999, 150_000);
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                store
                    .ingest_bytes(meta("MET-X", "AX-X", T0), &data)
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|c| !c.duplicate).count(), 1);
    assert!(results.iter().all(|c| c.id == results[0].id));
    drop(store);
    let store = open_small(dir.path());
    for (id, data) in &all {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), data);
    }
}

#[test]
fn metadata_is_kept_and_bad_metadata_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let mut m = meta("MET-004217", "AX-B3-00123", T0);
    m.cases = vec!["CASE-2".into(), "CASE-1".into()];
    m.categories = vec!["evidential".into()];
    let c = store.ingest_bytes(m.clone(), b"video").unwrap();
    let info = store.info(c.id).unwrap();
    assert_eq!(info.officer, "MET-004217");
    assert_eq!(info.cases, vec!["CASE-1", "CASE-2"]);
    assert_eq!(info.categories, vec!["evidential"]);
    assert_eq!(info.gps_fixes, 2);
    assert_eq!(info.start.to_string(), "2025-11-20T14:03:00Z");
    assert_eq!(info.tier, footage::TierState::Local);
    assert_eq!(store.track(c.id).unwrap(), m.gps);

    for bad in [
        footage::SegmentMeta {
            officer: String::new(),
            ..m.clone()
        },
        footage::SegmentMeta {
            device: "x".repeat(65),
            ..m.clone()
        },
        footage::SegmentMeta {
            end_us: m.start_us - 1,
            ..m.clone()
        },
        footage::SegmentMeta {
            tags: vec!["has space".into()],
            ..m.clone()
        },
    ] {
        assert!(matches!(
            store.begin_segment(bad),
            Err(footage::Error::Invalid(_))
        ));
    }
    assert!(matches!(store.info(999), Err(footage::Error::NotFound(_))));
    assert!(store.read_range(c.id, 6, 1).is_err());
}

#[test]
fn a_second_process_cannot_open_a_locked_store() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open_small(dir.path());
    // The lock is per open file description, so a second open in this process conflicts too.
    assert!(matches!(
        footage::testing::open_or_create_default(dir.path()),
        Err(footage::Error::Locked { .. })
    ));
}

#[test]
fn several_data_dirs_spread_volumes_and_a_lost_dir_spares_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let disk_a = dir.path().join("disk-a");
    let disk_b = dir.path().join("disk-b");
    let opts = StoreOptions {
        data_dirs: vec![disk_a.clone(), disk_b.clone()],
        ..small_options()
    };
    let store = footage::testing::open_or_create_with(dir.path().join("store"), &opts).unwrap();
    let mut segs = Vec::new();
    for i in 0..6 {
        let data = random_bytes(i, 100_000);
        segs.push((
            store
                .ingest_bytes(meta("MET-1", "AX-1", T0 + i as i64), &data)
                .unwrap()
                .id,
            data,
        ));
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.disks.len(), 2);
    assert!(stats.disks.iter().all(|d| d.volumes > 0), "{stats:?}");
    // A clean close checkpoints the catalog, so it still knows the segments on the lost disk.
    store.close().unwrap();
    // Disk B dies.
    std::fs::remove_dir_all(&disk_b).unwrap();
    std::fs::write(&disk_b, b"not a directory any more").unwrap();
    let store = footage::testing::open_or_create_with(dir.path().join("store"), &opts).unwrap();
    let stats = store.stats().unwrap();
    assert!(!stats.disks[1].available);
    let (mut ok, mut lost) = (0, 0);
    for (id, data) in &segs {
        match store.read_range(*id, 0, u64::MAX) {
            Ok(got) => {
                assert_eq!(&got, data);
                ok += 1;
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("unreadable") || e.to_string().contains("missing"),
                    "{e}"
                );
                lost += 1;
            }
        }
    }
    assert_eq!((ok, lost), (3, 3));
    // New footage goes to the disk that still works.
    let c = store
        .ingest_bytes(meta("MET-1", "AX-1", T0 + 99), b"after the failure")
        .unwrap();
    assert_eq!(
        store.read_range(c.id, 0, 100).unwrap(),
        b"after the failure"
    );
}
