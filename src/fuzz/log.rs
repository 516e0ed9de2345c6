//! Targets for the records of the log (`format/`): the 32-byte record header with its
//! payload, commit, change and seal payloads, and the volume header.

use super::fix_crc;
use crate::catalog::Catalog;
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::format::record::{Kind, RecordHeader, HEADER_LEN};
use crate::format::volume::{Seal, VolumeHeader, VOLUME_HEADER_LEN};

const HEADER: usize = HEADER_LEN as usize;

/// A whole record (header then payload) as read from a volume.
pub fn record(data: &[u8]) {
    record_once(data);
    // Recompute both CRCs so that mutated fields reach the decoders behind them.
    let mut fixed = data.to_vec();
    let len = fixed
        .get(8..12)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let end = HEADER.saturating_add(len).min(fixed.len());
    fix_crc(&mut fixed, HEADER, end, 12);
    fixed.truncate(end.max(HEADER.min(fixed.len())));
    fix_crc(&mut fixed, 0, 28, 28);
    record_once(&fixed);
}

fn record_once(data: &[u8]) {
    let Ok(h) = RecordHeader::decode(data) else {
        return;
    };
    assert_eq!(
        RecordHeader::decode(&h.encode()),
        Ok(h),
        "header round trip"
    );
    let payload = data.get(HEADER..).unwrap_or_default();
    if h.check_payload(payload).is_err() {
        return;
    }
    match h.kind {
        Kind::Chunk => {}
        Kind::Commit => commit(payload),
        Kind::Seal => seal(payload),
        Kind::Change => change_of(payload, h.a),
    }
}

/// A commit record payload.
pub fn commit(data: &[u8]) {
    let full = CommitRecord::decode(data, true);
    let light = CommitRecord::decode(data, false);
    let Ok(rec) = full else {
        return;
    };
    let _ = rec.meta.validate();
    let mut without_track = rec.clone();
    without_track.meta.gps.clear();
    assert_eq!(
        light.as_ref(),
        Ok(&without_track),
        "decoding without the track must give the same record"
    );
    let again = CommitRecord::decode(&rec.encode(), true);
    assert_eq!(again.as_ref(), Ok(&rec), "commit record round trip");
    // Replay: apply it to a catalog (twice: the second is a no-op) and search it.
    let mut cat = Catalog::new();
    assert!(cat.apply_commit(&rec, 1, 4064));
    assert!(!cat.apply_commit(&rec, 1, 4064));
    assert!(cat.get(rec.segment_id).is_some());
    super::catalog::queries(&cat);
}

/// A change record payload.
pub fn change(data: &[u8]) {
    change_of(data, 7);
}

fn change_of(data: &[u8], segment_id: u64) {
    let Ok(c) = ChangeRecord::decode(data, segment_id) else {
        return;
    };
    // A list too long to encode cannot have been decoded.
    let Ok(encoded) = c.encode() else {
        panic!("a decoded change record encodes again");
    };
    let again = ChangeRecord::decode(&encoded, segment_id);
    assert_eq!(again.as_ref(), Ok(&c), "change record round trip");
    // Replay: apply it to a catalog holding the segment, then search by its labels.
    let mut cat = Catalog::new();
    let rec = CommitRecord {
        segment_id,
        lsn: 1,
        committed_us: 0,
        bytes: 0,
        sha256: [0; 32],
        chunk_capacity: 0,
        meta: crate::meta::SegmentMeta {
            officer: "MET-1".into(),
            device: "AX-1".into(),
            ..Default::default()
        },
        extents: Vec::new(),
        block_crcs: false,
        one_sync: false,
        durable_to: 0,
        actor: None,
    };
    cat.apply_commit(&rec, 1, 4064);
    if let Some(base) = c.base_lsn {
        // A delta applies only on top of its base state.
        assert!(
            !cat.apply_change(&c, 2),
            "a delta without its base is not applied"
        );
        if base >= c.lsn {
            return;
        }
        let full = ChangeRecord {
            lsn: base,
            op: crate::format::change::Op::Restate,
            base_lsn: None,
            ..c.clone()
        };
        assert!(cat.apply_change(&full, 2), "a full change applies");
    }
    assert!(
        cat.apply_change(&c, 2),
        "a change to a live segment applies"
    );
    assert!(
        !cat.apply_change(&c, 2),
        "a change applied twice is a no-op"
    );
    super::catalog::queries(&cat);
}

fn seal(data: &[u8]) {
    if let Ok(s) = Seal::decode(data) {
        assert_eq!(Seal::decode(&s.encode()), Ok(s), "seal round trip");
    }
}

/// The 64-byte volume header (and the same bytes as a seal payload).
pub fn volume_header(data: &[u8]) {
    volume_header_once(data);
    let mut fixed = data.to_vec();
    fix_crc(&mut fixed, 0, VOLUME_HEADER_LEN - 4, VOLUME_HEADER_LEN - 4);
    volume_header_once(&fixed);
    seal(data);
}

fn volume_header_once(data: &[u8]) {
    if let Ok(h) = VolumeHeader::decode(data) {
        let enc = h.encode();
        assert_eq!(enc.len(), VOLUME_HEADER_LEN);
        assert_eq!(
            VolumeHeader::decode(&enc),
            Ok(h),
            "volume header round trip"
        );
    }
}
