//! Commits made durable by one fdatasync (docs/FORMAT.md §11, "One-sync commit records"): a
//! segment up to 16 MiB has its commit record appended right behind its chunks, and one
//! fdatasync makes both durable. Recovery's rule, tested here on images a crash could leave:
//!
//! - a one-sync commit whose chunk did not reach the disk (its bytes are zeros or stale) is
//!   left out at open, listed in `OpenReport::unconfirmed` and `damage`, and the volume
//!   holding the chunk is sealed; the store takes new footage, and a full replay (no
//!   checkpoint) leaves it out again;
//! - the same damage to a segment the audit log says was acknowledged is bit rot: the segment
//!   stays, the damage is reported, reads of that chunk fail;
//! - a chunk below a later record's durable watermark is not read at open: damage there is
//!   bit rot found by reads and `verify`, not a reason to drop an acknowledged segment;
//! - a segment over 16 MiB is committed chunks-first, and recovery never reads its chunks.

#[path = "common/damage.rs"]
mod damage;

use std::path::{Path, PathBuf};

use damage::*;
use footage::format::record::HEADER_LEN;
use footage::Store;

fn reopen(root: &Path) -> Store {
    Store::open_with(root, &options(&["data"])).unwrap()
}

/// Zeroes the data of chunk `index` of segment `id`, as if its write never reached the disk.
fn lose_chunk(dirs: &[PathBuf], id: u64, index: u32, len: u64) {
    use std::os::unix::fs::FileExt;
    let (path, pos) = find_chunk(dirs, id, index);
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; len as usize], pos + HEADER_LEN)
        .unwrap();
    f.sync_all().unwrap();
}

fn checkpoints(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect()
}

/// Run by `a_one_sync_commit_...` as a child process: ingests segment 2 of the store named by
/// `FOOTAGE_ONE_SYNC_CHILD` with the crash point `ingest.one_sync_appended` armed, which
/// aborts the process after the commit record is written and before its fdatasync. (Run
/// without that variable, as by `cargo test`, it does nothing.)
#[test]
fn one_sync_child() {
    if let Ok(root) = std::env::var("FOOTAGE_ONE_SYNC_CHILD") {
        let store = reopen(Path::new(&root));
        store
            .ingest_bytes(meta(2, false), &bytes(2, 150_000))
            .unwrap();
        panic!("the crash point did not abort the ingest");
    }
}

#[test]
fn a_one_sync_commit_whose_chunk_was_lost_is_left_out_and_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let dirs = vec![root.join("data")];
    let store = open(&root, &dir.path().join("cloud"), &["data"]);
    let kept = store
        .ingest_bytes(meta(1, false), &bytes(1, 100_000))
        .unwrap()
        .id;
    store.close().unwrap();
    // A crash after the commit record of segment 2 was written and before its fdatasync
    // returned (so it was never acknowledged: no audit entry)...
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "one_sync_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FOOTAGE_ONE_SYNC_CHILD", &root)
        .env(footage::fail::ENV, "ingest.one_sync_appended")
        .output()
        .unwrap();
    // Aborted by the crash point (a signal), not a panic (exit code 101).
    assert!(
        out.status.code().is_none(),
        "the child did not crash: {out:?}"
    );
    let lost = kept + 1;
    // ...and a power cut then that kept the record but not the data of its second chunk.
    lose_chunk(&dirs, lost, 1, 1000);
    let store = reopen(&root);
    let report = store.open_report().clone();
    assert_eq!(report.unconfirmed, vec![lost], "{report:?}");
    // Crash residue like a torn tail, not damage.
    assert!(report.damage.is_empty(), "{:?}", report.damage);
    assert!(
        store.info(lost).is_err(),
        "the unconfirmed segment is visible"
    );
    assert_eq!(
        store.read_range(kept, 0, 100_000).unwrap(),
        bytes(1, 100_000)
    );
    verify_clean(&store);
    // The store goes on (the volume is sealed: the next segment goes to a new one), and the
    // id of the unconfirmed segment is not handed out again.
    let next = store
        .ingest_bytes(meta(3, false), &bytes(3, 90_000))
        .unwrap()
        .id;
    assert!(next > lost);
    drop(store);
    // A full replay of the log, without any checkpoint, decides the same.
    for c in checkpoints(&root) {
        std::fs::remove_file(c).unwrap();
    }
    let store = reopen(&root);
    assert_eq!(store.open_report().unconfirmed, vec![lost]);
    assert_eq!(store.segment_ids(), vec![kept, next]);
    assert_eq!(store.read_range(next, 0, 90_000).unwrap(), bytes(3, 90_000));
    verify_clean(&store);
}

/// The same damage to an acknowledged segment (its `ingest` audit entry names it) is bit rot,
/// not crash residue: the segment stays, the damage is reported, and reads of the chunk fail.
#[test]
fn an_acknowledged_segment_with_a_rotten_chunk_past_the_watermark_stays() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let dirs = vec![root.join("data")];
    let store = open(&root, &dir.path().join("cloud"), &["data"]);
    let id = store
        .ingest_bytes(meta(1, false), &bytes(1, 150_000))
        .unwrap()
        .id;
    drop(store);
    lose_chunk(&dirs, id, 1, 1000);
    let store = reopen(&root);
    let report = store.open_report().clone();
    assert!(report.unconfirmed.is_empty(), "{report:?}");
    assert!(
        report
            .damage
            .iter()
            .any(|d| d.contains(&format!("segment {id} ")) && d.contains("acknowledged")),
        "{:?}",
        report.damage
    );
    assert!(store.info(id).is_ok());
    assert!(store.read_range(id, 0, 150_000).is_err());
    assert_eq!(
        store.read_range(id, 0, 1000).unwrap(),
        bytes(1, 150_000)[..1000]
    );
}

#[test]
fn chunks_below_a_later_watermark_are_not_read_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let dirs = vec![root.join("data")];
    let store = open(&root, &dir.path().join("cloud"), &["data"]);
    let first = store
        .ingest_bytes(meta(1, false), &bytes(1, 100_000))
        .unwrap()
        .id;
    // This commit's record carries a watermark past every byte of the first segment.
    store
        .ingest_bytes(meta(2, false), &bytes(2, 10_000))
        .unwrap();
    drop(store);
    rot_chunk(&dirs, first, 0, 500);
    let store = reopen(&root);
    assert!(store.open_report().unconfirmed.is_empty());
    // Acknowledged and then rotten: found by a read and by verify, never dropped at open.
    assert!(store.info(first).is_ok());
    assert!(store.read_range(first, 0, 1000).is_err());
    assert_eq!(
        store.verify(None, |_| {}).unwrap().corrupt,
        vec![first.to_string()]
    );
}

#[test]
fn a_segment_over_16_mib_is_committed_chunks_first_and_never_read_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let dirs = vec![root.join("data")];
    // 64 MiB volumes: the 17 MiB segment and its commit record stay in one volume.
    let mut opts = options(&["data"]);
    opts.volume_size = 64 << 20;
    let store = footage::testing::open_or_create_with(&root, &opts).unwrap();
    let big = bytes(4, (17 << 20) + 5);
    let id = store.ingest_bytes(meta(1, false), &big).unwrap().id;
    drop(store);
    // Its last chunk is damaged after the fact: the open does not look (the chunks were
    // durable before the record), the segment stays, and reading its end fails.
    let last = (big.len() as u64).div_ceil(64 * 1024 - 32 - 20) - 1;
    rot_chunk(&dirs, id, last as u32, 3);
    let store = Store::open_with(&root, &opts).unwrap();
    assert!(store.open_report().unconfirmed.is_empty());
    assert!(store.info(id).is_ok());
    assert_eq!(store.read_range(id, 0, 1 << 20).unwrap(), big[..1 << 20]);
    let tail = big.len() as u64 - 10;
    assert!(store.read_range(id, tail, 10).is_err());
}

fn verify_clean(store: &Store) {
    let r = store.verify(None, |_| {}).unwrap();
    assert!(r.corrupt.is_empty() && r.lost.is_empty(), "{r:?}");
}
