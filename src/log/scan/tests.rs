//! Tests of the recovery scan: records found, damage and residue told apart.

use std::sync::Arc;

use super::*;
use crate::format::volume::VolumeHeader;
use crate::log::writer::{Appended, VolumeWriter};

/// A volume of chunk records of the given payload sizes, a seal record at the end; returns
/// it with the offset of every record header.
fn volume_of(dir: &std::path::Path, sizes: &[usize]) -> (Arc<Volume>, Vec<u64>) {
    let header = VolumeHeader {
        volume_id: 1,
        store_id: [7; 16],
        created_us: 0,
        chunk_size: 1 << 20,
        age_day: 0,
    };
    let vol = Arc::new(Volume::create(&dir.join("vol-00000001.ftv"), 0, header).unwrap());
    let w = VolumeWriter::new(Arc::clone(&vol), VOLUME_HEADER_LEN as u64, u64::MAX);
    let mut at = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let payload = vec![i as u8 | 1; n];
        match w.append(Kind::Chunk, i as u64, 0, &[&payload]).unwrap() {
            Appended::At(p) => at.push(p),
            Appended::Full => panic!("full"),
        }
    }
    w.seal(0).unwrap();
    (vol, at)
}

/// Walks every record as `scan` does; returns the header offsets, the bytes read and the
/// number of reads.
fn walk(vol: &Volume) -> (Vec<u64>, u64, u64) {
    let file_len = vol.len().unwrap();
    let mut rd = Reader::new(vol, file_len);
    let mut pos = next_header_pos(VOLUME_HEADER_LEN as u64);
    let mut at = Vec::new();
    while let Probe::Record(h, _, sealed) = probe(&mut rd, pos) {
        if sealed {
            break;
        }
        rd.passed(&h);
        at.push(pos);
        pos = next_header_pos(record_end(pos, h.len));
    }
    (at, rd.read_bytes, rd.reads)
}

#[test]
fn small_records_are_read_in_windows_and_large_chunks_are_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    const MIB: usize = 1 << 20;
    // Small chunks (dense: read ahead), video-sized ones (headers only), and a mix.
    let mut sizes = vec![4096; 200];
    sizes.extend([MIB; 8]);
    sizes.extend([300, 4096, 2 * MIB, 100, MIB, 70_000, 64 * 1024, MIB]);
    sizes.extend([4096; 50]);
    let (vol, expected) = volume_of(tmp.path(), &sizes);
    let (at, read, _) = walk(&vol);
    assert_eq!(at, expected);
    let o = scan(&vol, 0);
    assert!(o.sealed && o.damage.is_empty() && o.residue.is_empty());
    // Every byte of the small records' region at most once, plus the headers of the large
    // chunks and at most one window past each run of small chunks.
    let small: usize = sizes
        .iter()
        .filter(|&&n| n as u64 <= SMALL_CHUNK)
        .map(|&n| crate::format::align_up(n as u64 + 32) as usize + 4096)
        .sum();
    let large = sizes.iter().filter(|&&n| n as u64 > SMALL_CHUNK).count();
    let bound = small + 4096 * large + 4 * MAX_WINDOW;
    assert!(read <= bound as u64, "read {read} > {bound}");
    let video: usize = sizes.iter().filter(|&&n| n as u64 > SMALL_CHUNK).sum();
    assert!(
        (read as usize) < video / 2,
        "read {read} of {video} bytes of large chunks"
    );
    // One read per window, not per record: 200 small chunks (1.6 MB) in a few reads.
    let dense = tmp.path().join("dense");
    std::fs::create_dir(&dense).unwrap();
    let (at, _, reads) = walk(&volume_of(&dense, &[4096; 200]).0);
    assert_eq!(at.len(), 200);
    assert!(reads <= 12, "{reads} reads");
}

#[test]
fn only_headers_are_read_between_large_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let sizes = [1 << 20; 16];
    let (vol, expected) = volume_of(tmp.path(), &sizes);
    let (at, read, reads) = walk(&vol);
    assert_eq!(at, expected);
    // The 16 chunk headers, then the seal record's header and its 12-byte payload.
    assert_eq!((read, reads), (32 * 17 + 12, 18));
}
