//! Helpers for tests that damage stores: finding a segment's chunk records in its volumes,
//! flipping bytes in place, and a store with a `file://` cloud tier.
#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use footage::format::record::{next_header_pos, Kind, RecordHeader, HEADER_LEN};
use footage::{GpsFix, SegmentMeta, Store, StoreOptions};
use sha2::{Digest, Sha256};

pub const T0: i64 = 1_763_647_380_000_000;

/// A policy whose `evidential` category uploads, with the cloud in `cloud`.
pub fn policy(cloud: &Path) -> String {
    format!(
        r#"
[cloud]
url = "file://{}"

[category.default]
upload = false
evict_after = "never"
delete_after = "never"

[category.evidential]
upload = true
evict_after = "never"
delete_after = "never"

[disk]
high_watermark = 1.0
"#,
        cloud.display()
    )
}

/// Small chunks (64 KiB) so segments of a few hundred KB span several chunks.
pub fn options(data_dirs: &[&str]) -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 4 << 20,
        data_dirs: data_dirs.iter().map(PathBuf::from).collect(),
        ..StoreOptions::default()
    }
}

/// Opens (creating) a store at `dir` whose cloud tier is the directory `cloud`.
pub fn open(dir: &Path, cloud: &Path, data_dirs: &[&str]) -> Store {
    let store = footage::testing::open_or_create_with(dir, &options(data_dirs)).unwrap();
    std::fs::write(dir.join("policy.toml"), policy(cloud)).unwrap();
    store
}

pub fn meta(i: u64, evidential: bool) -> SegmentMeta {
    let start = T0 + i as i64 * 600_000_000;
    SegmentMeta {
        officer: format!("MET-{i:06}"),
        device: format!("AX-{i}"),
        start_us: start,
        end_us: start + 300_000_000,
        gps: vec![GpsFix::from_degrees(start, 51.5, -0.12).unwrap()],
        categories: if evidential {
            vec!["evidential".into()]
        } else {
            vec![]
        },
        ..SegmentMeta::default()
    }
}

pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

pub fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Every volume file under `dirs`.
pub fn volumes(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "ftv") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// The volume and header offset of chunk `index` of segment `id`, found by walking every
/// record header of every volume in `dirs`.
pub fn find_chunk(dirs: &[PathBuf], id: u64, index: u32) -> (PathBuf, u64) {
    for path in volumes(dirs) {
        let data = std::fs::read(&path).unwrap();
        let mut pos = 4064u64;
        while pos + HEADER_LEN <= data.len() as u64 {
            let h = &data[pos as usize..(pos + HEADER_LEN) as usize];
            let Ok(h) = RecordHeader::decode(h) else {
                pos += 4096;
                continue;
            };
            if h.kind == Kind::Chunk && h.a == id && h.b == index {
                return (path, pos);
            }
            pos = next_header_pos(pos + HEADER_LEN + u64::from(h.len));
        }
    }
    panic!("chunk {index} of segment {id} not found");
}

/// Flips one bit of the byte at `offset` of `path`, in place (no truncation: sealed volumes
/// are memory-mapped by the open store).
pub fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
    f.sync_all().unwrap();
}

/// Flips a payload byte of chunk `index` of segment `id` (`at` bytes into the payload).
pub fn rot_chunk(dirs: &[PathBuf], id: u64, index: u32, at: u64) {
    let (path, pos) = find_chunk(dirs, id, index);
    flip(&path, pos + HEADER_LEN + at);
}

/// The whole segment read back.
pub fn read_all(store: &Store, id: u64) -> footage::Result<Vec<u8>> {
    let len = store.info(id)?.bytes;
    store.read_range(id, 0, len)
}

/// The store's cloud directory of segment `id`.
pub fn cloud_dir(store: &Store, cloud: &Path, id: u64) -> PathBuf {
    let sid = store.config().store_id.to_ascii_lowercase();
    cloud.join(sid).join("segments").join(format!("{id:020}"))
}

/// Waits (polling) until `f` holds; panics after `limit` seconds, which only guards against
/// a hang: the condition is about progress, never about speed.
pub fn wait_until(limit_s: u64, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed().as_secs() < limit_s,
            "condition not reached after {limit_s} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
