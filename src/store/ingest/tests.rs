//! Unit tests of `store/ingest/` (moved out of it whole; the module is `super`).

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::config::StoreOptions;
use crate::meta::SegmentMeta;
use crate::Store;

/// Metadata of test segment `n` (one officer and camera, start `n` µs after a fixed time).
pub(crate) fn meta(n: i64) -> SegmentMeta {
    SegmentMeta {
        officer: "MET-9".into(),
        device: "AX-9".into(),
        start_us: 1_763_647_380_000_000 + n,
        end_us: 1_763_647_380_000_000 + n + 1,
        ..SegmentMeta::default()
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn writes_of_every_size_and_alignment_store_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(
        dir.path(),
        &StoreOptions {
            chunk_size: 64 * 1024,
            volume_size: 4 << 20,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let cap = 64 * 1024 - 32;
    let data = bytes(1, 3 << 20);
    // Writes that start inside a chunk, end inside one, span many, are hashed inline or on
    // the helper thread, and cross volume boundaries (4 MiB volumes).
    let plans: [&[usize]; 4] = [
        &[1, cap - 1, cap, 7, 300 * 1024, 1, 2 * cap + 5, 1 << 20],
        &[cap + 1, 256 * 1024, 256 * 1024 - 1, 3],
        &[1 << 20, 1 << 20, 17],
        &[5, 2 << 20],
    ];
    let mut ids = Vec::new();
    for (k, plan) in plans.iter().enumerate() {
        let mut w = store.begin_segment(meta(k as i64)).unwrap();
        let mut at = 0;
        for &n in plan.iter() {
            w.write(&data[at..at + n]).unwrap();
            at += n;
        }
        let c = w.commit().unwrap();
        assert_eq!(c.bytes, at as u64);
        assert_eq!(c.sha256.to_vec(), Sha256::digest(&data[..at]).to_vec());
        ids.push((c.id, at));
    }
    let mut w = store.begin_segment(meta(9)).unwrap();
    let n = data.len() - 12_345;
    assert_eq!(
        w.copy_from(&mut Trickle(&data[..n], 100_000)).unwrap(),
        n as u64
    );
    let c = w.commit().unwrap();
    assert_eq!(c.sha256.to_vec(), Sha256::digest(&data[..n]).to_vec());
    ids.push((c.id, n));
    for (id, len) in ids {
        assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), &data[..len]);
        store.verify_segment(id).unwrap();
    }
}
