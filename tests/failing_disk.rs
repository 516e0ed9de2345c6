//! A failing disk: a store with two data dirs loses one, while open (reads start failing
//! with EIO: injected, see `footage::fail::inject_eio`, because a lazily unmounted file system
//! keeps serving open files) and across a reopen (the disk is unmounted, so its mount point
//! is an empty dir: a tmpfs unmounted with `umount -l` when we may mount, else the dir moved
//! away; or the path is no longer a directory). Segments on the other disk stay readable,
//! `stats` and `verify` name the lost ones, and those with a cloud copy are read from the
//! cloud.

#[path = "common/damage.rs"]
mod damage;
#[path = "common/verify.rs"]
mod verify_report;

use std::path::Path;
use std::process::Command;

use damage::*;
use footage::{Error, Store};

const ACTOR: &str = "sgt.test";

struct Fixture {
    root: std::path::PathBuf,
    cloud: std::path::PathBuf,
    /// (id, bytes, data dir number, uploaded)
    segments: Vec<(u64, Vec<u8>, u16, bool)>,
}

/// Six segments over two data dirs (round robin), every other one on each dir uploaded.
fn fixture(dir: &Path, disk1: &Path) -> (Fixture, Store) {
    let root = dir.join("s");
    let cloud = dir.join("cloud");
    let d1 = disk1.to_str().unwrap().to_string();
    let store = open(&root, &cloud, &["d0", &d1]);
    let mut segments = Vec::new();
    // Ingest first (round robin: d0, d1, d0, ...), then upload (change records also take
    // turns, so interleaving them would change the placement).
    for i in 0..6u64 {
        let data = bytes(i, 150_000 + i as usize * 10_000);
        let uploaded = i % 4 < 2;
        let c = store.ingest_bytes(meta(i, uploaded), &data).unwrap();
        segments.push((c.id, data, 0, uploaded));
    }
    for s in segments.iter().filter(|s| s.3) {
        store.upload(s.0, ACTOR, &mut |_| {}).unwrap();
    }
    // Which dir each segment went to: where its first chunk is.
    for s in &mut segments {
        let (path, _) = find_chunk(&[root.join("d0"), disk1.to_path_buf()], s.0, 0);
        s.2 = u16::from(!path.starts_with(root.join("d0")));
    }
    assert!(
        segments.iter().any(|s| s.2 == 1 && s.3),
        "an uploaded segment on disk 1"
    );
    assert!(
        segments.iter().any(|s| s.2 == 1 && !s.3),
        "a local-only segment on disk 1"
    );
    (
        Fixture {
            root,
            cloud,
            segments,
        },
        store,
    )
}

/// Checks what a store that lost disk 1 must show.
fn check_lost_disk1(store: &Store, f: &Fixture) {
    for (id, data, disk, uploaded) in &f.segments {
        match (disk, uploaded) {
            (0, _) | (1, true) => assert_eq!(&read_all(store, *id).unwrap(), data, "segment {id}"),
            _ => {
                let e = read_all(store, *id).unwrap_err();
                assert!(
                    matches!(e, Error::Unavailable { .. } | Error::Io { .. }),
                    "segment {id}: {e}"
                );
            }
        }
    }
    let lost: Vec<(String, bool)> = f
        .segments
        .iter()
        .filter(|s| s.2 == 1)
        .map(|s| (s.0.to_string(), s.3))
        .collect();
    let stats = store.stats().unwrap();
    let named: Vec<(String, bool)> = stats
        .lost
        .iter()
        .map(|l| (l.id.clone(), l.cloud_copy))
        .collect();
    assert_eq!(named, lost, "stats");
    assert_eq!(stats.unavailable_segments, lost.len());
    assert_eq!(
        stats.unavailable_without_cloud_copy,
        lost.iter().filter(|l| !l.1).count()
    );
    assert!(stats.disks[0].available);
    assert!(!stats.disks[1].available, "{:?}", stats.disks[1]);
    let v = store.verify(None, |_| {}).unwrap();
    verify_report::assert_verify_only_lost(&v, &lost, "verify");
    // New footage goes to the disk that works.
    let c = store
        .ingest_bytes(meta(99, false), &bytes(99, 70_000))
        .unwrap();
    let (path, _) = find_chunk(&[f.root.join("d0")], c.id, 0);
    assert!(path.starts_with(f.root.join("d0")));
}

#[test]
fn a_disk_failing_while_open_names_its_segments_and_uploaded_ones_come_from_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let disk1 = dir.path().join("disk1");
    let (f, store) = fixture(dir.path(), &disk1);
    footage::fail::inject_eio(&disk1);
    check_lost_disk1(&store, &f);
    footage::fail::clear_eio();
    let _ = f.cloud;
}

/// Mounts a small tmpfs at `at` if this process may (root); false otherwise.
fn mount_tmpfs(at: &Path) -> bool {
    Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64M",
            "tmpfs",
            at.to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_disk_gone_at_reopen_names_its_segments_and_uploaded_ones_come_from_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let disk1 = dir.path().join("disk1");
    std::fs::create_dir_all(&disk1).unwrap();
    let mounted = mount_tmpfs(&disk1);
    if !mounted {
        eprintln!("not allowed to mount a tmpfs: the disk is simulated by moving its dir away");
    }
    let (f, store) = fixture(dir.path(), &disk1);
    store.close().unwrap();
    if mounted {
        let ok = Command::new("umount")
            .args(["-l", disk1.to_str().unwrap()])
            .status();
        assert!(ok.is_ok_and(|s| s.success()));
    } else {
        std::fs::rename(&disk1, dir.path().join("disk1-away")).unwrap();
        std::fs::create_dir(&disk1).unwrap();
    }
    // The mount point is an empty dir: every volume of disk 1 is missing.
    let store = footage::testing::open_or_create_default(&f.root).unwrap();
    assert!(
        store
            .open_report()
            .bad_volumes
            .iter()
            .any(|b| b.contains("missing from data dir 1")),
        "{:?}",
        store.open_report()
    );
    check_lost_disk1_at_open(&store, &f);
    drop(store);
    // The command names them and exits 1.
    let out = Command::new(env!("CARGO_BIN_EXE_footage"))
        .args(["--store", f.root.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unreachable on disk"), "{err}");

    // The mount point is not even a directory any more: the dir fails at open.
    std::fs::remove_dir(&disk1).unwrap();
    std::fs::write(&disk1, b"not a dir").unwrap();
    let store = footage::testing::open_or_create_default(&f.root).unwrap();
    assert_eq!(store.open_report().failed_dirs.len(), 1);
    check_lost_disk1(&store, &f);
}

/// As [`check_lost_disk1`], for a dir that exists but lost its volumes (so the dir itself
/// still works and is reported available, with its volumes missing).
fn check_lost_disk1_at_open(store: &Store, f: &Fixture) {
    for (id, data, disk, uploaded) in &f.segments {
        match (disk, uploaded) {
            (0, _) | (1, true) => assert_eq!(&read_all(store, *id).unwrap(), data, "segment {id}"),
            _ => assert!(matches!(
                read_all(store, *id).unwrap_err(),
                Error::Unavailable { .. }
            )),
        }
    }
    let lost: Vec<(String, bool)> = f
        .segments
        .iter()
        .filter(|s| s.2 == 1)
        .map(|s| (s.0.to_string(), s.3))
        .collect();
    let stats = store.stats().unwrap();
    let named: Vec<(String, bool)> = stats
        .lost
        .iter()
        .map(|l| (l.id.clone(), l.cloud_copy))
        .collect();
    assert_eq!(named, lost);
    assert!(stats.lost.iter().all(|l| l.reason.contains("missing")));
    let v = store.verify(None, |_| {}).unwrap();
    verify_report::assert_verify_only_lost(&v, &lost, "verify");
}
