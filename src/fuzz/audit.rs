//! Targets for the audit files: a whole `audit-<seq>.log` (file header, then frames walked by
//! the scanner that recovery and verification use), one entry body, and the `HEAD` file.

use super::fix_crc;
use crate::audit::format::{
    decode_frame, FileHeader, Frame, HeadFile, RawEntry, FILE_HEADER_LEN, FRAME_MAGIC, HEAD_LEN,
};
use crate::audit::scan::{scan, Item};
use crate::audit::AuditEntry;

/// A whole audit file.
pub fn audit_log(data: &[u8]) {
    file_header(data);
    let mut fixed = data.to_vec();
    fix_crc(&mut fixed, 0, FILE_HEADER_LEN - 4, FILE_HEADER_LEN - 4);
    file_header(&fixed);
    let from = if data.len() >= FILE_HEADER_LEN {
        FILE_HEADER_LEN
    } else {
        0
    };
    let mut last = from;
    let (end, tail) = scan(data, from, |item| match item {
        Item::Entry { offset, end, entry } => {
            assert!(offset >= last && end > offset && end <= data.len());
            last = end;
            entry_round_trip(&entry);
        }
        Item::Damage { from, to, .. } => {
            assert!(from >= last && to > from && to <= data.len());
            last = to;
        }
    });
    assert!(end >= from && end <= data.len());
    if let Some(t) = tail {
        assert!(t.from >= end && t.from < data.len());
    }
}

fn file_header(data: &[u8]) {
    if let Ok(h) = FileHeader::decode(data) {
        assert_eq!(FileHeader::decode(&h.encode()), Ok(h), "audit file header");
    }
}

/// One entry body (framed here with a right length and CRC, so every body reaches the
/// decoder).
pub fn audit_entry(body: &[u8]) {
    let mut frame = FRAME_MAGIC.to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&frame[4..8]);
    crc.update(body);
    frame[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
    match decode_frame(&frame, 0) {
        Frame::Entry(e, end) => {
            assert_eq!(end, frame.len());
            entry_round_trip(&e);
        }
        Frame::Bad(_) => {}
    }
}

fn entry_round_trip(e: &RawEntry) {
    let _ = e.compute_hash();
    match decode_frame(&e.encode_frame(), 0) {
        Frame::Entry(back, _) => assert_eq!(&back, e, "audit entry round trip"),
        Frame::Bad(why) => panic!("a re-encoded audit entry does not decode: {why}"),
    }
    let _ = AuditEntry::from_raw(e.clone()).to_json();
}

/// The 96-byte `HEAD` file.
pub fn audit_head(data: &[u8]) {
    head(data);
    let mut fixed = data.to_vec();
    fix_crc(&mut fixed, 0, HEAD_LEN - 4, HEAD_LEN - 4);
    head(&fixed);
}

fn head(data: &[u8]) {
    if let Ok(h) = HeadFile::decode(data) {
        assert_eq!(
            HeadFile::decode(&h.encode()),
            Ok(h),
            "audit HEAD round trip"
        );
    }
}
