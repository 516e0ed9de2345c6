//! Disk pressure on real small filesystems (tmpfs, mounted as root): early eviction picks
//! only uploaded segments on the data disk that is over the watermark, oldest first; a full
//! disk with nothing evictable refuses ingest with a clear error and loses nothing.
//!
//! Needs root (mount). Under CI (`common::in_ci`) a failing mount fails the test; otherwise it
//! is skipped, saying so (`common::skip`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::random_bytes;
use footage::{Error, SegmentMeta, StoreOptions};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_759_276_800_000_000;

/// A tmpfs of `mb` MiB at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}M"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            common::skip(
                "disk_pressure",
                &format!("cannot mount a tmpfs at {} (needs root)", dir.display()),
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn meta(n: usize, categories: &[&str]) -> SegmentMeta {
    SegmentMeta {
        officer: format!("MET-{n}"),
        device: format!("AX-{n}"),
        start_us: T0 + n as i64 * 60_000_000,
        end_us: T0 + n as i64 * 60_000_000 + 30_000_000,
        categories: categories.iter().map(|c| c.to_string()).collect(),
        ..SegmentMeta::default()
    }
}

fn policy(cloud: &Path, watermark: f64) -> String {
    format!(
        r#"
[cloud]
url = "file://{}"
[category.default]
upload = false
evict_after = "31d"
delete_after = "31d"
[category.evidential]
upload = true
evict_after = "30d"
delete_after = "never"
[disk]
high_watermark = {watermark}
compact_below_live = 0
"#,
        cloud.display()
    )
}

fn options(dirs: Vec<PathBuf>) -> StoreOptions {
    StoreOptions {
        data_dirs: dirs,
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        ..StoreOptions::default()
    }
}

#[test]
fn a_full_disk_with_nothing_evictable_refuses_ingest_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&dir.path().join("disk"), 8) else {
        return;
    };
    let root = dir.path().join("store");
    let store =
        footage::testing::open_or_create_with(&root, &options(vec![mnt.0.clone()])).unwrap();
    std::fs::write(
        root.join("policy.toml"),
        policy(&dir.path().join("cloud"), 0.5),
    )
    .unwrap();
    let mut stored = Vec::new();
    let mut refused = None;
    for n in 0..100 {
        let bytes = random_bytes(n as u64, 400_000);
        match store.ingest_bytes(meta(n, &[]), &bytes) {
            Ok(c) => stored.push((c.id, bytes)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("an 8 MiB disk cannot take 40 MB");
    assert!(matches!(e, Error::DiskFull { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("nothing stored was lost") && msg.contains("verified cloud copy"),
        "{msg}"
    );
    // Retention cannot help: nothing is uploaded (the default category never is) and
    // nothing is past delete_after, so nothing may go.
    let s = store
        .retention_apply(T0 + DAY, false, "t", &mut |_| {})
        .unwrap();
    assert_eq!((s.evicted, s.deleted), (0, 0), "{s:?}");
    let again = store.ingest_bytes(meta(500, &[]), &random_bytes(500, 400_000));
    assert!(matches!(again, Err(Error::DiskFull { .. })), "{again:?}");
    for (id, bytes) in &stored {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), bytes);
    }
    drop(store);
    // And after a reopen.
    let store = footage::testing::open_or_create_default(&root).unwrap();
    assert_eq!(store.len(), stored.len());
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after pressure");
}

#[test]
fn pressure_evicts_only_uploaded_segments_of_the_full_disk_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = Tmpfs::mount(&dir.path().join("small"), 8) else {
        return;
    };
    let Some(big) = Tmpfs::mount(&dir.path().join("big"), 64) else {
        return;
    };
    let root = dir.path().join("store");
    let store = footage::testing::open_or_create_with(
        &root,
        &options(vec![small.0.clone(), big.0.clone()]),
    )
    .unwrap();
    std::fs::write(
        root.join("policy.toml"),
        policy(&dir.path().join("cloud"), 0.25),
    )
    .unwrap();
    // Round robin: odd ids on the small disk, even ids on the big one; uploaded ones are
    // evidential, the rest may never leave.
    let mut data = Vec::new();
    for n in 0..16 {
        let cats: &[&str] = if n % 3 == 2 { &[] } else { &["evidential"] };
        let bytes = random_bytes(n as u64, 300_000);
        let id = store.ingest_bytes(meta(n, cats), &bytes).unwrap().id;
        assert_eq!(id, n as u64 + 1);
        data.push((id, cats.is_empty(), bytes));
    }
    // Day 1: nothing is due for eviction; the small disk (about 4.8 of 8 MiB) is over 25 %,
    // the big one (about 2.4 of 64 MiB) is not.
    let s = store
        .retention_apply(T0 + DAY, false, "t", &mut |_| {})
        .unwrap();
    assert!(s.failed.is_empty(), "{s:?}");
    let evicted: Vec<u64> = data
        .iter()
        .filter(|(id, ..)| store.info(*id).unwrap().tier == footage::TierState::Cloud)
        .map(|(id, ..)| *id)
        .collect();
    assert!(!evicted.is_empty(), "nothing evicted: {s:?}");
    assert_eq!(s.evicted, evicted.len());
    for id in &evicted {
        assert_eq!(id % 2, 1, "segment {id} is on the disk below the watermark");
    }
    // Oldest first: every uploaded segment of the small disk older than an evicted one
    // was evicted too.
    let newest = *evicted.iter().max().unwrap();
    for (id, never, _) in &data {
        if id % 2 == 1 && *id < newest && !never {
            assert!(evicted.contains(id), "{id} is older than {newest} but kept");
        }
        if *never {
            assert_eq!(store.info(*id).unwrap().tier, footage::TierState::Local);
        }
    }
    // The small disk is below the watermark now (or nothing more could go).
    let disk = &store.stats().unwrap().disks[0];
    let used = disk.total_bytes.unwrap() - disk.free_bytes.unwrap();
    let evictable_left = data
        .iter()
        .any(|(id, never, _)| id % 2 == 1 && !never && !evicted.contains(id));
    assert!(
        !evictable_left || used as f64 <= 0.25 * disk.total_bytes.unwrap() as f64,
        "small disk still at {used} bytes"
    );
    for (id, _, bytes) in &data {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), bytes);
    }
}
