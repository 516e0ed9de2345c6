//! Chunks with block CRC trailers (docs/FORMAT.md §6, commit record version 3): a read checks
//! only the 16 KiB blocks it returns, and still never returns a byte that no CRC vouched for.
//!
//! - any range, read through `read_range` or a seeking reader with reads of any size,
//!   returns exactly the bytes ingested (active and sealed volumes);
//! - a rotten byte fails every read that returns its block, and only those; `verify` and a
//!   whole read fail;
//! - a damaged trailer fails every read of its chunk;
//! - a header whose block-CRC flag was cleared (CRC fixed up) is refused, so the trailer is
//!   never returned as video;
//! - a forger who recomputes every CRC is caught by the SHA-256 (`verify`).

mod common;
#[path = "common/damage.rs"]
mod damage;

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use damage::*;
use footage::format::record::HEADER_LEN;
use footage::{Error, Store};

const BLOCK: u64 = 16 * 1024;

/// A store with 64 KiB chunks holding one 300,000-byte segment, and its data dir. With
/// `seal`, 4 MiB more on the same day fill the segment's volume, which is then sealed and
/// read through its memory map; else it stays the active volume, read with `pread`.
fn store_with_segment(dir: &std::path::Path, seal: bool) -> (Store, u64, Vec<u8>, Vec<PathBuf>) {
    let store = open(&dir.join("s"), &dir.join("cloud"), &["data"]);
    let data = bytes(11, 300_000);
    let id = store.ingest_bytes(meta(1, false), &data).unwrap().id;
    if seal {
        store
            .ingest_bytes(meta(2, false), &bytes(12, 4 << 20))
            .unwrap();
        assert!(
            volumes(&[dir.join("s/data")]).len() >= 2,
            "volume not sealed"
        );
    }
    (store, id, data, vec![dir.join("s/data")])
}

/// The segment offset where chunk `index` starts (64 KiB chunks: 4 blocks each, the capacity
/// 65,536 − 32 − 20).
fn chunk_start(index: u64) -> u64 {
    index * (64 * 1024 - 32 - 20)
}

#[test]
fn any_range_reads_back_exactly_from_active_and_sealed_volumes() {
    for seal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, data, _) = store_with_segment(dir.path(), seal);
        let mut rng = 7u64;
        let mut next = |below: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % below
        };
        let mut reader = store.open_segment(id).unwrap();
        for _ in 0..400 {
            let off = next(data.len() as u64);
            let long = next(4) == 0;
            let len = 1 + next(if long { 200_000 } else { 5_000 });
            let end = (off + len).min(data.len() as u64) as usize;
            let got = store.read_range(id, off, len).unwrap();
            assert!(got == data[off as usize..end], "read_range {off}+{len}");
            reader.seek(SeekFrom::Start(off)).unwrap();
            let mut buf = vec![0u8; end - off as usize];
            reader.read_exact(&mut buf).unwrap();
            assert!(buf == data[off as usize..end], "reader {off}+{len}");
        }
        // Small sequential reads straddle blocks and chunks.
        let mut reader = store.open_segment(id).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        assert!(all == data, "sequential 1000-byte reads (sealed: {seal})");
    }
}

#[test]
fn a_rotten_byte_fails_the_reads_of_its_block_and_only_those() {
    for seal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, data, dirs) = store_with_segment(dir.path(), seal);
        // Byte 100 of block 2 of chunk 1.
        rot_chunk(&dirs, id, 1, 2 * BLOCK + 100);
        let bad = chunk_start(1) + 2 * BLOCK + 100;
        for (off, len) in [(bad, 1), (bad - 50, 100), (chunk_start(1) + 2 * BLOCK, 16)] {
            match store.read_range(id, off, len) {
                Err(Error::SegmentCorrupt {
                    segment, offset, ..
                }) => {
                    assert_eq!(segment, id);
                    assert_eq!(offset, chunk_start(1), "the chunk's start is reported");
                }
                other => panic!("read {off}+{len} of a rotten block: {other:?}"),
            }
        }
        // The other blocks of the same chunk, and the other chunks, still read.
        for (off, len) in [
            (chunk_start(1), BLOCK),
            (chunk_start(1) + 3 * BLOCK, 500),
            (0, 60_000),
            (chunk_start(2) + 10, 100_000),
        ] {
            let got = store.read_range(id, off, len).unwrap();
            assert!(
                got == data[off as usize..(off + len) as usize],
                "{off}+{len}"
            );
        }
        assert!(read_all(&store, id).is_err());
        let report = store.verify(None, |_| {}).unwrap();
        assert_eq!(report.corrupt, vec![id.to_string()], "sealed: {seal}");
    }
}

#[test]
fn a_damaged_trailer_fails_every_read_of_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, data, dirs) = store_with_segment(dir.path(), true);
    let (path, pos) = find_chunk(&dirs, id, 2);
    let data_len = chunk_start(1);
    // The CRC of block 1, inside the trailer after the chunk's data.
    flip(&path, pos + HEADER_LEN + data_len + 4);
    for block in 0..4 {
        let off = chunk_start(2) + block * BLOCK;
        assert!(
            matches!(
                store.read_range(id, off, 10),
                Err(Error::SegmentCorrupt { .. })
            ),
            "block {block}"
        );
    }
    let got = store.read_range(id, chunk_start(3), 1000).unwrap();
    assert!(got == data[chunk_start(3) as usize..chunk_start(3) as usize + 1000]);
}

#[test]
fn a_cleared_block_flag_is_refused_not_read_as_video() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, _, dirs) = store_with_segment(dir.path(), false);
    // A later commit's durable watermark covers the segment: the open does not read its
    // chunks (tests/one_sync.rs), so the read is what meets the altered header.
    store
        .ingest_bytes(meta(3, false), &bytes(13, 1000))
        .unwrap();
    let (path, pos) = find_chunk(&dirs, id, 0);
    let mut b = std::fs::read(&path).unwrap();
    let h = pos as usize;
    b[h + 6] = 0;
    // A plain chunk's CRC over the whole payload, and the header CRC: a consistent record
    // that only the flag's absence distinguishes.
    common::reseal_chunk(&mut b, h);
    drop(store);
    std::fs::write(&path, &b).unwrap();
    let store = Store::open_with(dir.path().join("s"), &options(&["data"])).unwrap();
    let e = store.read_range(id, 0, 10).unwrap_err().to_string();
    assert!(e.contains("holds another record"), "{e}");
    assert_eq!(
        store.verify(None, |_| {}).unwrap().corrupt,
        vec![id.to_string()]
    );
}

#[test]
fn a_forger_who_recomputes_every_crc_is_caught_by_the_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, data, dirs) = store_with_segment(dir.path(), true);
    let (path, pos) = find_chunk(&dirs, id, 1);
    let mut b = std::fs::read(&path).unwrap();
    b[(pos + HEADER_LEN + 5000) as usize] ^= 0x20;
    common::reseal_chunk(&mut b, pos as usize);
    drop(store);
    std::fs::write(&path, &b).unwrap();
    let store = Store::open_with(dir.path().join("s"), &options(&["data"])).unwrap();
    // Every CRC now vouches for the forged byte: a range read returns it...
    let got = store.read_range(id, chunk_start(1) + 5000, 1).unwrap();
    assert_ne!(got[0], data[(chunk_start(1) + 5000) as usize]);
    // ...and the segment's SHA-256 does not match: verify names it.
    let report = store.verify(None, |_| {}).unwrap();
    assert_eq!(report.corrupt, vec![id.to_string()]);
    assert!(
        format!("{:?}", report.errors).contains("SHA-256"),
        "{:?}",
        report.errors
    );
}
