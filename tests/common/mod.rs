//! Helpers shared by the integration tests.
#![allow(dead_code)]

use footage::{GpsFix, SegmentMeta, Store, StoreOptions};
use rand::{Rng, SeedableRng};
use std::path::Path;

pub const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

pub fn meta(officer: &str, device: &str, start_us: i64) -> SegmentMeta {
    SegmentMeta {
        officer: officer.into(),
        device: device.into(),
        start_us,
        end_us: start_us + 60_000_000,
        gps: vec![
            GpsFix::from_degrees(start_us, 51.5080, -0.1247).unwrap(),
            GpsFix::from_degrees(start_us + 5_000_000, 51.5082, -0.1249).unwrap(),
        ],
        cases: vec![],
        tags: vec!["test".into()],
        categories: vec![],
    }
}

pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Options with small chunks and volumes, so tests cross chunk and volume boundaries.
pub fn small_options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        ..StoreOptions::default()
    }
}

pub fn open_small(dir: &Path) -> Store {
    footage::testing::open_or_create_with(dir, &small_options()).unwrap()
}

/// Copies a directory tree (a store) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Volume files of a store's default data dir, sorted by name.
pub fn volume_files(store_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store_dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ftv"))
        .collect();
    v.sort();
    v
}

/// True when tests that need an external tool must fail rather than skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
