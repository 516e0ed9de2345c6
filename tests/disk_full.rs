//! A real full disk (issue #6): the store lives on a small tmpfs that fills up during ingest,
//! during a checkpoint and during audit appends. Each time the error says "disk full" and
//! names the directory, nothing stored is lost or damaged (open, verify and the audit chain
//! pass, every acknowledged segment reads back), the store even reopens while the disk is
//! still full, and ingest works again once space is freed.
//!
//! Needs root (to mount tmpfs). Under CI (`common::in_ci`) a failed mount fails the test;
//! otherwise the test is skipped, saying so (`common::skip`).

mod common;

use footage::AuditAction as Action;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{meta, random_bytes, T0};
use footage::{Error, Store, StoreOptions};

/// Size of the file system: room for a dozen 1 MB segments beside the filler.
const FS_SIZE: &str = "16m";
const SEGMENT: usize = 1_000_000;

/// A tmpfs mounted for one test, unmounted when dropped (also when the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        common::skip(
            "disk_full",
            &format!("cannot mount a tmpfs for the disk-full test (needs root): {why}"),
        );
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 2 << 20,
        checkpoint_every: 4,
        ..StoreOptions::default()
    }
}

/// Writes `len` bytes of a file (or, with `None`, until the disk is full).
fn fill(path: &Path, len: Option<usize>) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5a; 64 * 1024];
    let mut left = len.unwrap_or(usize::MAX);
    while left > 0 {
        let n = left.min(block.len());
        match f.write(&block[..n]) {
            Ok(k) => left -= k,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && len.is_none() => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

struct Stored {
    id: u64,
    data: Vec<u8>,
}

/// Footage of an hour ago: nothing is due for deletion or eviction.
fn recent(i: usize) -> i64 {
    footage::now_us() - 3_600_000_000 + i as i64 * 1_000_000
}

/// Footage of a year before the test was written: due for deletion under the default policy.
fn old(i: usize) -> i64 {
    T0 - 400 * 86_400_000_000 + i as i64 * 1_000_000
}

fn ingest(store: &Store, i: usize) -> (footage::SegmentMeta, Vec<u8>, Result<u64, Error>) {
    ingest_at(store, i, recent(i))
}

fn ingest_at(
    store: &Store,
    i: usize,
    start: i64,
) -> (footage::SegmentMeta, Vec<u8>, Result<u64, Error>) {
    let m = meta("MET-000002", &format!("AX-{i}"), start);
    let data = random_bytes(i as u64, SEGMENT);
    let r = store.ingest_bytes(m.clone(), &data).map(|c| c.id);
    (m, data, r)
}

fn assert_disk_full(e: &Error, mount: &Path) {
    let msg = e.to_string();
    match e {
        Error::DiskFull { path, .. } => assert!(path.starts_with(mount), "{msg}"),
        other => panic!("expected disk full, got {other:?}"),
    }
    assert!(msg.starts_with("disk full"), "{msg}");
    assert!(msg.contains(&*mount.to_string_lossy()), "{msg}");
}

/// Open report clean, verify clean, audit chain intact, every stored segment reads back.
fn check_whole(store: &Store, stored: &[Stored]) {
    let r = store.open_report();
    assert!(r.damage.is_empty() && r.bad_volumes.is_empty(), "{r:?}");
    let v = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&v, "after disk full");
    assert_eq!(v.checked, stored.len());
    let a = store.audit_verify().unwrap();
    assert!(a.ok, "{:?}", a.problems);
    for s in stored {
        let got = store.read_range(s.id, 0, SEGMENT as u64).unwrap();
        assert!(got == s.data, "segment {} reads back wrong", s.id);
    }
}

fn no_temporaries(root: &Path) {
    for sub in ["", "catalog", "audit"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{sub}/{name} left behind");
        }
    }
}

#[test]
fn ingest_until_the_disk_is_full_then_free_space_and_go_on() {
    let Some(fs) = Tmpfs::mount(FS_SIZE) else {
        return;
    };
    let root: PathBuf = fs.path().join("store");
    let filler = fs.path().join("filler");
    fill(&filler, Some(3 << 20));
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    let mut stored = Vec::new();
    let mut failed = None;
    for i in 0..64 {
        let (m, data, r) = ingest(&store, i);
        match r {
            Ok(id) => stored.push(Stored { id, data }),
            Err(e) => {
                assert_disk_full(&e, fs.path());
                let msg = e.to_string();
                assert!(
                    msg.contains("nothing can be evicted or deleted now"),
                    "{msg}"
                );
                failed = Some((m, data));
                break;
            }
        }
    }
    let (m, data) = failed.expect("the disk never filled up");
    assert!(stored.len() >= 5, "only {} segments fit", stored.len());
    println!("{} segments stored before the disk was full", stored.len());
    check_whole(&store, &stored);
    // The failed segment's chunks were cut back; take that room too, so the disk is full.
    let filler2 = fs.path().join("filler2");
    fill(&filler2, None);
    // A second try on the still-full disk fails the same way and changes nothing.
    let e = store.ingest_bytes(m.clone(), &data).unwrap_err();
    assert_disk_full(&e, fs.path());
    assert_eq!(store.len(), stored.len());

    // Reopen while the disk is still full (no clean close: the log is replayed).
    drop(store);
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    check_whole(&store, &stored);
    no_temporaries(&root);

    // Free space: ingest works again.
    assert!(store.last_checkpoint_error().is_some());
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler2).unwrap();
    let c = store.ingest_bytes(m, &data).unwrap();
    assert!(!c.duplicate);
    stored.push(Stored { id: c.id, data });
    let (_, data, r) = ingest(&store, 100);
    stored.push(Stored {
        id: r.unwrap(),
        data,
    });
    check_whole(&store, &stored);
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    check_whole(&store, &stored);
}

#[test]
fn a_checkpoint_or_audit_append_on_a_full_disk_fails_cleanly() {
    let Some(fs) = Tmpfs::mount(FS_SIZE) else {
        return;
    };
    let root = fs.path().join("store");
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    let mut stored = Vec::new();
    for i in 0..3 {
        let (_, data, r) = ingest(&store, i);
        stored.push(Stored {
            id: r.unwrap(),
            data,
        });
    }
    let filler = fs.path().join("filler");
    fill(&filler, None);

    // Checkpoint: a new file, so it needs space.
    let e = store.checkpoint().unwrap_err();
    assert_disk_full(&e, fs.path());
    no_temporaries(&root);

    // Audit appends: the file's last page has room for a few; keep going until one fails.
    let before = store.audit_head().0;
    let mut appended = 0u64;
    let err = loop {
        let details = serde_json::json!({ "note": "x".repeat(200) });
        match store.audit("MET-000002", Action::Custom("note".into()), None, details) {
            Ok(()) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 10_000, "audit appends never filled the disk");
    };
    assert_disk_full(&err, fs.path());
    assert_eq!(store.audit_head().0, before + appended);
    let a = store.audit_verify().unwrap();
    assert!(a.ok, "{:?}", a.problems);
    // A commit whose audit entry cannot be written is reported (the segment is durable).
    let (m, data, r) = ingest(&store, 10);
    assert_disk_full(&r.unwrap_err(), fs.path());
    check_whole(&store, &stored[..]);

    std::fs::remove_file(&filler).unwrap();
    store.checkpoint().unwrap();
    store
        .audit(
            "MET-000002",
            Action::Custom("note".into()),
            None,
            serde_json::json!({}),
        )
        .unwrap();
    // The retried segment: stored now, or found stored already (its commit was durable).
    let c = store.ingest_bytes(m, &data).unwrap();
    stored.push(Stored { id: c.id, data });
    check_whole(&store, &stored);
    no_temporaries(&root);
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    check_whole(&store, &stored);
}

#[test]
fn retention_frees_a_full_disk_and_keeps_what_is_held() {
    let Some(fs) = Tmpfs::mount(FS_SIZE) else {
        return;
    };
    let root = fs.path().join("store");
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    // A legal hold keeps the first segment, however full the disk gets.
    let (_, data, r) = ingest_at(&store, 0, old(0));
    let held = Stored {
        id: r.unwrap(),
        data,
    };
    store.hold(held.id, "CASE-1", "MET-000009").unwrap();
    let mut others = 0;
    let err = loop {
        let i = others + 1;
        match ingest_at(&store, i, old(i)).2 {
            Ok(_) => others += 1,
            Err(e) => break e,
        }
        assert!(i < 64, "the disk never filled up");
    };
    assert_disk_full(&err, fs.path());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{others} segment(s) are due for deletion"))
            && msg.contains("footage retention apply"),
        "{msg}"
    );
    let s = store
        .retention_apply(footage::now_us(), false, "MET-000009", &mut |_| {})
        .unwrap();
    assert!(s.failed.is_empty(), "{s:?}");
    assert_eq!((s.deleted, s.held), (others, 1), "{s:?}");
    let (_, data, r) = ingest(&store, 500);
    let new = Stored {
        id: r.unwrap(),
        data,
    };
    check_whole(&store, &[held, new]);
    no_temporaries(&root);
}
