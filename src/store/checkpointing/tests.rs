//! Unit tests of `store/checkpointing.rs`: a volume sealed beside a checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::StoreOptions;
use crate::store::ingest::tests::meta;
use crate::Store;

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        // No checkpoint but the ones the test asks for.
        checkpoint_every: 1_000_000,
        ..StoreOptions::default()
    }
}

/// Copies a store's files as a crash of its process leaves them (the page cache is the disk).
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            crash_image(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Opens the crash image, checks that verify finds nothing and every segment reads back.
fn reopen_clean(image: &Path, segments: &[(u64, Vec<u8>)]) {
    let store = Store::open_with(image, &options()).unwrap();
    let report = store.verify(None, |_| {}).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems());
    for (id, data) in segments {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), data);
    }
    store.close().unwrap();
}

/// A rotation seals the active volume while a checkpoint, which holds no writer lock, has
/// listed its writer and not yet read its end: the checkpoint must not record the end past
/// the seal record for a volume it still calls active. Before the fix, the next open scanned
/// from beyond the seal, took the volume for active, sealed it a second time, and verify
/// reported it (the kill campaign found this at `ingest.audited`).
#[test]
fn a_volume_sealed_while_a_checkpoint_lists_its_writer_is_recorded_before_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create_with(&root, &options()).unwrap();
    let first = bytes(1, 600 * 1024);
    let mut w = store.begin_segment(meta(0)).unwrap();
    w.write(&first).unwrap();
    let a = w.commit().unwrap().id;
    let writer = store.inner.writers.lock().values().next().cloned().unwrap();
    let volume = writer.volume.id;

    // The second segment does not fit in what is left: its chunks rotate the volume. Its
    // writer runs on another thread, started from inside the checkpoint (which holds the
    // catalog there, so the rotation's own catalog update waits until it is written).
    let second = bytes(2, 600 * 1024);
    let seg = store.begin_segment(meta(1)).unwrap();
    let handle = Arc::new(Mutex::new(None));
    let (h, payload, sealed) = (Arc::clone(&handle), second.clone(), Arc::clone(&writer));
    crate::fail::set_hook("checkpoint.writers_listed", move || {
        let mut seg = seg;
        *h.lock() = Some(std::thread::spawn(move || {
            seg.write(&payload).unwrap();
            seg
        }));
        let t0 = Instant::now();
        while !sealed.is_sealed() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the rotation never sealed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let path = store.inner.checkpoint().unwrap();
    let seg = handle.lock().take().expect("the hook ran").join().unwrap();
    let b = seg.commit().unwrap().id;

    // The checkpoint calls the volume active (the seal was not in the catalog yet) and starts
    // its replay before the seal record, so the next open finds the seal.
    let file = std::fs::read(&path).unwrap();
    let body = crate::catalog::checkpoint::decode_file(&file).unwrap();
    let (cat, _, _) = crate::catalog::checkpoint::decode_body(&body).unwrap();
    let state = cat.volumes.get(&volume).copied().unwrap();
    assert!(!state.sealed);
    assert!(
        state.replay_from < writer.end(),
        "replay from {} but the seal record ends at {}",
        state.replay_from,
        writer.end()
    );

    let image = dir.path().join("image");
    crash_image(&root, &image);
    reopen_clean(&image, &[(a, first), (b, second)]);
    store.close().unwrap();
}

/// A store that an earlier build's checkpoint left with an active volume whose replay starts
/// just past its seal record opens with the volume sealed, once.
#[test]
fn a_checkpoint_that_starts_replay_past_a_seal_record_opens_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create_with(&root, &options()).unwrap();
    let mut segments = Vec::new();
    for k in 0..2 {
        let data = bytes(k as u8, 600 * 1024);
        let mut w = store.begin_segment(meta(k)).unwrap();
        w.write(&data).unwrap();
        segments.push((w.commit().unwrap().id, data));
    }
    // The first volume is sealed (rotated out); the checkpoint of the earlier build.
    let (volume, end) = {
        let mut cat = store.inner.catalog.write();
        let v = cat.volumes.values_mut().find(|v| v.sealed).unwrap();
        v.sealed = false;
        (v.id, v.replay_from)
    };
    store.inner.checkpoint().unwrap();
    assert!(crate::log::scan::seal_ends_at(
        &store.inner.volume(volume).unwrap(),
        end
    ));
    let image = dir.path().join("image");
    crash_image(&root, &image);
    let path = store.inner.volume(volume).unwrap().path.clone();
    let file = image.join(path.strip_prefix(&root).unwrap());
    let len = std::fs::metadata(&file).unwrap().len();
    reopen_clean(&image, &segments);
    // Sealed once: the file did not grow.
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
    store.close().unwrap();
}
