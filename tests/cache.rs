//! The read cache of evicted footage (`[cache]` in footage.toml, src/cache): a second viewing
//! needs no cloud, least-recently-used blocks go first, the byte budget holds under
//! concurrent readers, damaged cached blocks are dropped and fetched again, corrupt cloud
//! blocks are never cached, deletion drops a segment's blocks, a crash during a fill leaves
//! nothing the next open keeps, an encrypted store caches no plaintext, a read-only open
//! writes no cache, a block read in small ranges is checked once and then served from
//! memory, a read in flight when its segment is deleted leaves nothing cached, and a
//! `meta.json` altered in the bucket together with a part (consistent CRCs) is refused
//! against the block CRC list kept locally at upload.
//!
//! The cloud is a `file://` directory, so a test can delete or damage its objects.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{random_bytes, small_options};
use footage::{Error, Key, Store, StoreOptions};

const MIB: usize = 1 << 20;
/// Bytes one cached block's file takes (a 64-byte header and the 1 MiB block).
const BLOCK_FILE: u64 = (MIB + 64) as u64;

const POLICY: &str = r#"
[cloud]
url = "CLOUD"

[category.default]
upload = false
evict_after = "never"
delete_after = "never"

[disk]
high_watermark = 1.0
"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cloud: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let cloud = tmp.path().join("cloud");
        Fixture {
            _tmp: tmp,
            root,
            cloud,
        }
    }

    /// Creates the store with a read cache of `max_bytes` (and a key if `key`), and opens it.
    fn create(&self, max_bytes: u64, key: Option<Key>) -> Store {
        let opts = self.options(key);
        footage::testing::open_or_create_with(&self.root, &opts)
            .unwrap()
            .close()
            .unwrap();
        let cfg = self.root.join("footage.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&format!("\n[cache]\nmax_bytes = {max_bytes}\n"));
        std::fs::write(&cfg, text).unwrap();
        let url = format!("file://{}", self.cloud.display());
        std::fs::write(self.root.join("policy.toml"), POLICY.replace("CLOUD", &url)).unwrap();
        self.open(&opts)
    }

    fn options(&self, key: Option<Key>) -> StoreOptions {
        StoreOptions {
            key,
            ..small_options()
        }
    }

    fn open(&self, opts: &StoreOptions) -> Store {
        common::open_gated(&self.root, opts).unwrap()
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Cache files (`.blk`) and fills (`.tmp`) in the cache directory.
    fn cache_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// The part objects of the cloud copies.
    fn parts(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.cloud.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("part-"))
                {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn delete_parts(&self) {
        for p in self.parts() {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// Ingests `data`, uploads and evicts it; returns its id.
fn evicted(store: &Store, data: &[u8], n: i64) -> u64 {
    let id = store
        .ingest_bytes(common::meta("PC1", "AX-1", common::T0 + n), data)
        .unwrap()
        .id;
    store.upload(id, "test", &mut |_| {}).unwrap();
    store.evict(id, "test").unwrap();
    assert_eq!(store.info(id).unwrap().tier, footage::TierState::Cloud);
    id
}

fn range(store: &Store, id: u64, from: usize, len: usize) -> footage::Result<Vec<u8>> {
    store.read_range(id, from as u64, len as u64)
}

#[test]
fn a_second_viewing_of_an_evicted_segment_needs_no_cloud_and_survives_a_restart() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(1, 3 * MIB + 1000);
    let id = evicted(&store, &data, 0);
    let (a, b) = (MIB + 5, 2 * MIB + 7);
    assert_eq!(range(&store, id, a, b - a).unwrap(), &data[a..b]);
    let s = store.read_cache_stats().unwrap();
    assert_eq!((s.hits, s.misses), (0, 3), "blocks 1..=3 fetched: {s:?}");
    assert_eq!(store.read_cache_blocks(), vec![(id, 1), (id, 2), (id, 3)]);
    assert!(s.bytes <= s.max_bytes && s.bytes > 2 * BLOCK_FILE, "{s:?}");

    // The cloud copy's parts are gone: the cached ranges still read, the others fail.
    fx.delete_parts();
    assert_eq!(range(&store, id, a, b - a).unwrap(), &data[a..b]);
    let s = store.read_cache_stats().unwrap();
    assert_eq!((s.hits, s.misses), (2, 3), "{s:?}");
    assert!(
        range(&store, id, 10, 100).is_err(),
        "block 0 was never cached"
    );
    let mut all = Vec::new();
    let whole = std::io::Read::read_to_end(&mut store.open_segment(id).unwrap(), &mut all);
    assert!(whole.is_err(), "a whole read needs block 0");

    // A restart keeps the cache (and its order).
    store.close().unwrap();
    let store = fx.open(&fx.options(None));
    assert_eq!(store.read_cache_blocks().len(), 3);
    let mut r = store.open_segment(id).unwrap();
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(MIB as u64)).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
    assert_eq!(rest, &data[MIB..]);
    assert_eq!(store.read_cache_stats().unwrap().misses, 0);
    // The cache never counts as a copy: verifying the segment reaches the cloud, and fails.
    assert!(store.verify_segment(id).is_err());
}

#[test]
fn least_recently_used_blocks_are_dropped_first() {
    let fx = Fixture::new();
    let store = fx.create(3 * BLOCK_FILE, None);
    let data = random_bytes(2, 5 * MIB);
    let id = evicted(&store, &data, 0);
    // A cold read fetches 4 MiB (blocks 0..=3): block 0, the oldest, makes room for 3.
    assert_eq!(range(&store, id, 0, 10).unwrap(), &data[..10]);
    assert_eq!(store.read_cache_blocks(), vec![(id, 1), (id, 2), (id, 3)]);
    // A hit on block 1 makes it the most recent; block 4 then pushes out block 2.
    assert_eq!(
        range(&store, id, MIB + 3, 10).unwrap(),
        &data[MIB + 3..MIB + 13]
    );
    assert_eq!(store.read_cache_blocks(), vec![(id, 2), (id, 3), (id, 1)]);
    assert_eq!(
        range(&store, id, 4 * MIB, 10).unwrap(),
        &data[4 * MIB..4 * MIB + 10]
    );
    assert_eq!(store.read_cache_blocks(), vec![(id, 3), (id, 1), (id, 4)]);
    let s = store.read_cache_stats().unwrap();
    assert_eq!(
        (s.evictions, s.blocks, s.bytes),
        (2, 3, 3 * BLOCK_FILE),
        "{s:?}"
    );
    assert_eq!(fx.cache_files().len(), 3);
}

#[test]
fn the_budget_holds_under_eight_concurrent_readers() {
    let fx = Fixture::new();
    let max = 5 * BLOCK_FILE + BLOCK_FILE / 2;
    let store = fx.create(max, None);
    let segs: Vec<(u64, Vec<u8>)> = (0..2)
        .map(|n| {
            let data = random_bytes(10 + n, 6 * MIB + 333);
            (evicted(&store, &data, n as i64), data)
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let store = store.clone();
            let segs = &segs;
            s.spawn(move || {
                let mut rng = Rng(t + 1);
                for _ in 0..24 {
                    let (id, data) = &segs[rng.below(2) as usize];
                    let from = rng.below(data.len() as u64 - 1) as usize;
                    let len = 1 + rng.below((2 * MIB) as u64) as usize;
                    let to = (from + len).min(data.len());
                    assert_eq!(
                        range(&store, *id, from, to - from).unwrap(),
                        &data[from..to]
                    );
                    let st = store.read_cache_stats().unwrap();
                    assert!(st.bytes <= max, "over budget: {st:?}");
                }
            });
        }
    });
    let s = store.read_cache_stats().unwrap();
    assert!(s.bytes <= max && s.evictions > 0 && s.hits > 0, "{s:?}");
    let on_disk: u64 = fx
        .cache_files()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(on_disk, s.bytes, "files on disk: {:?}", fx.cache_files());
    assert_eq!(fx.cache_files().len() as u64, s.blocks);
}

#[test]
fn a_flipped_bit_in_a_cached_block_is_detected_dropped_and_fetched_again() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(3, 2 * MIB);
    let id = evicted(&store, &data, 0);
    assert_eq!(range(&store, id, 100, 50).unwrap(), &data[100..150]);
    let files = fx.cache_files();
    assert_eq!(files.len(), 2);
    for (n, at) in [(1u64, 64 + 12345usize), (2, 30)] {
        // A payload bit, then a header bit (the segment id field).
        let mut bytes = std::fs::read(&files[0]).unwrap();
        bytes[at] ^= 0x10;
        std::fs::write(&files[0], &bytes).unwrap();
        assert_eq!(range(&store, id, 100, 50).unwrap(), &data[100..150]);
        let s = store.read_cache_stats().unwrap();
        assert_eq!(s.corrupt, n, "{s:?}");
        // Fetched again from the cloud and cached sound.
        let again = std::fs::read(&files[0]).unwrap();
        assert_ne!(again, bytes);
        assert_eq!(again.len() as u64, BLOCK_FILE);
    }
    fx.delete_parts();
    assert_eq!(range(&store, id, 100, 50).unwrap(), &data[100..150]);
    // Every block is cached, yet the cloud copy is gone: verify says so (the cache is no copy).
    assert_eq!(store.read_cache_blocks(), vec![(id, 1), (id, 0)]);
    assert!(store.verify_segment(id).is_err());
    let report = store.verify(None, |_| {}).unwrap();
    assert!(!report.is_clean(), "{report:?}");
}

#[test]
fn a_corrupt_cloud_block_is_never_cached() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(4, 4 * MIB);
    let id = evicted(&store, &data, 0);
    let part = &fx.parts()[0];
    let mut bytes = std::fs::read(part).unwrap();
    bytes[MIB + 77] ^= 1; // block 1
    std::fs::write(part, &bytes).unwrap();
    match range(&store, id, 0, 3 * MIB) {
        Err(Error::SegmentCorrupt { offset, .. }) => assert_eq!(offset, MIB as u64),
        other => panic!("expected corruption, got {:?}", other.map(|v| v.len())),
    }
    // Block 0 passed its CRC; block 1 did not and nothing after it was taken.
    assert_eq!(store.read_cache_blocks(), vec![(id, 0)]);
    assert!(range(&store, id, MIB, 10).is_err());
    assert!(!store.read_cache_blocks().contains(&(id, 1)));
    assert_eq!(fx.cache_files().len(), 1);
}

#[test]
fn deleting_a_segment_drops_its_cached_blocks_even_after_a_crash() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let keep = evicted(&store, &random_bytes(5, MIB), 0);
    let gone = evicted(&store, &random_bytes(6, 2 * MIB), 1);
    let third = evicted(&store, &random_bytes(7, MIB), 2);
    for id in [keep, gone, third] {
        range(&store, id, 0, 10).unwrap();
    }
    assert_eq!(fx.cache_files().len(), 4);
    store.delete(gone, "test").unwrap();
    assert_eq!(store.read_cache_blocks(), vec![(keep, 0), (third, 0)]);
    assert_eq!(fx.cache_files().len(), 2);

    // A crash between a deletion's record and the cache drop leaves files behind: the next
    // open drops those of segments the catalog no longer has.
    let saved: Vec<(PathBuf, Vec<u8>)> = fx
        .cache_files()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    store.delete(third, "test").unwrap();
    store.close().unwrap();
    for (p, b) in &saved {
        std::fs::write(p, b).unwrap();
    }
    let store = fx.open(&fx.options(None));
    assert_eq!(store.read_cache_blocks(), vec![(keep, 0)]);
    assert_eq!(fx.cache_files().len(), 1);
}

/// A small deterministic generator (xorshift), for the readers' ranges.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Runs `footage get` of a range in a child process armed with `failpoint`.
fn get_in_child(root: &Path, id: u64, failpoint: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_footage"));
    cmd.arg("--store")
        .arg(root)
        .args([
            "--actor",
            "cache-test",
            "get",
            &id.to_string(),
            "--length",
            "10",
        ])
        .stdin(Stdio::null())
        .env("FOOTAGE_FAILPOINT", failpoint);
    common::output(&mut cmd)
}

#[test]
fn a_crash_during_a_fill_leaves_at_most_a_temp_file_removed_at_open() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(8, MIB + 10);
    let id = evicted(&store, &data, 0);
    store.close().unwrap();

    // Killed after writing the fill, before its rename: a temp file, removed at open.
    let out = get_in_child(&fx.root, id, "cache.fill.written");
    assert!(!out.status.success(), "the child must have crashed");
    let files = fx.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_str().unwrap().ends_with(".tmp"), "{files:?}");
    let store = fx.open(&fx.options(None));
    assert!(fx.cache_files().is_empty(), "{:?}", fx.cache_files());
    assert!(store.read_cache_blocks().is_empty());
    store.close().unwrap();

    // Killed right after the rename: the block is whole and kept.
    let out = get_in_child(&fx.root, id, "cache.fill.renamed");
    assert!(!out.status.success(), "the child must have crashed");
    let store = fx.open(&fx.options(None));
    assert_eq!(store.read_cache_blocks(), vec![(id, 0)]);
    fx.delete_parts();
    assert_eq!(range(&store, id, 5, 100).unwrap(), &data[5..105]);
    assert!(range(&store, id, MIB, 10).is_err());
}

#[test]
fn an_encrypted_store_caches_only_sealed_blocks() {
    let fx = Fixture::new();
    let key = Key::from_bytes([9; 32]);
    let store = fx.create(64 << 20, Some(key));
    let data = random_bytes(9, 2 * MIB + 500);
    let id = evicted(&store, &data, 0);
    assert_eq!(range(&store, id, 0, data.len()).unwrap(), data);
    let files = fx.cache_files();
    assert_eq!(files.len(), 3);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        // No 32-byte window of the plaintext (at any 4 KiB step) is in a cache file.
        for at in (0..data.len() - 32).step_by(4096) {
            let w = &data[at..at + 32];
            assert!(
                !bytes.windows(32).any(|x| x == w),
                "plaintext at {at} found in {f:?}"
            );
        }
    }
    fx.delete_parts();
    assert_eq!(range(&store, id, 0, data.len()).unwrap(), data);
    assert_eq!(store.read_cache_stats().unwrap().hits, 3);
}

#[test]
fn a_read_only_open_reads_evicted_footage_without_writing_a_cache() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(11, MIB + 10);
    let id = evicted(&store, &data, 0);
    let ro = Store::open_read_only(&fx.root, &StoreOptions::default()).unwrap();
    assert_eq!(range(&ro, id, 0, 100).unwrap(), &data[..100]);
    assert!(ro.read_cache_stats().is_none());
    assert!(fx.cache_files().is_empty());
    // The owner's cache is filled by the owner only.
    assert_eq!(range(&store, id, 0, 100).unwrap(), &data[..100]);
    assert_eq!(fx.cache_files().len(), 2);
}

#[test]
fn the_cache_is_in_stats_and_metrics() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let id = evicted(&store, &random_bytes(12, MIB), 0);
    range(&store, id, 0, 10).unwrap();
    range(&store, id, 0, 10).unwrap();
    let v = serde_json::to_value(store.stats().unwrap()).unwrap();
    let c = &v["cache"];
    assert_eq!(
        (c["hits"].as_u64(), c["misses"].as_u64()),
        (Some(1), Some(1)),
        "{c}"
    );
    assert_eq!(c["bytes"].as_u64(), Some(BLOCK_FILE));
    assert_eq!(c["max_bytes"].as_u64(), Some(64 << 20));
    let samples = footage::service::store_samples(&store);
    let get = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(get("footage_read_cache_hits_total"), 1.0);
    assert_eq!(get("footage_read_cache_misses_total"), 1.0);
    assert_eq!(get("footage_read_cache_bytes"), BLOCK_FILE as f64);
    assert_eq!(get("footage_read_cache_evictions_total"), 0.0);
}

#[test]
fn a_bad_cache_table_is_refused_with_a_clear_error() {
    let fx = Fixture::new();
    fx.create(1 << 20, None).close().unwrap();
    let cfg = fx.root.join("footage.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "max_bytes = 1048576",
            "max_bytes = 1048576\ndir = \"../elsewhere\"",
        ),
    )
    .unwrap();
    match footage::testing::open_or_create_with(&fx.root, &small_options()) {
        Err(Error::Config { what, .. }) => assert!(what.contains("cache.dir"), "{what}"),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_block_read_in_small_ranges_is_checked_once_then_served_from_memory() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(13, 2 * MIB + 100);
    let id = evicted(&store, &data, 0);
    assert_eq!(range(&store, id, 0, 10).unwrap(), &data[..10]); // from the cloud
    let r = 64 * 1024;
    for n in 0..MIB / r {
        // A new reader per range, as the HTTP server has per range request.
        assert_eq!(
            range(&store, id, n * r, r).unwrap(),
            &data[n * r..(n + 1) * r]
        );
    }
    let s = store.read_cache_stats().unwrap();
    // The first range read the block's file (and checked it), the other 15 its plaintext.
    assert_eq!((s.hits, s.memory_hits, s.misses), (16, 15, 3), "{s:?}");
    assert_eq!((s.memory_blocks, s.memory_bytes), (1, MIB as u64), "{s:?}");
    assert!(s.memory_bytes <= s.memory_max_bytes, "{s:?}");
    // A hit in memory is a use of the block: its file stays the most recent.
    assert_eq!(store.read_cache_blocks(), vec![(id, 1), (id, 2), (id, 0)]);
    store.delete(id, "test").unwrap();
    let s = store.read_cache_stats().unwrap();
    assert_eq!(
        (s.memory_blocks, s.memory_bytes, s.blocks),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn a_read_in_flight_when_its_segment_is_deleted_leaves_no_cached_block() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(14, MIB + 10);
    let id = evicted(&store, &data, 0);
    // The deletion runs between the fill's write of block 0 and its rename.
    let deleter = store.clone();
    footage::fail::set_hook("cache.fill.before_rename", move || {
        deleter.delete(id, "test").unwrap();
    });
    // The bytes were verified before the deletion: the read itself may finish.
    assert_eq!(range(&store, id, 0, 10).unwrap(), &data[..10]);
    assert!(store.info(id).is_err(), "the segment was deleted");
    assert_eq!(store.read_cache_blocks(), Vec::<(u64, u64)>::new());
    assert_eq!(fx.cache_files(), Vec::<PathBuf>::new());
    let s = store.read_cache_stats().unwrap();
    assert_eq!((s.blocks, s.bytes, s.memory_blocks), (0, 0, 0), "{s:?}");
}

/// Changes block `block` of the first part of segment `id`'s cloud copy and rewrites its
/// `meta.json` to match (block CRC32 and SHA-256), as someone with write access to the bucket
/// would. Returns the segment's bytes as the cloud copy now has them.
fn tamper_consistently(fx: &Fixture, id: u64, data: &[u8], block: usize) -> Vec<u8> {
    use sha2::Digest;
    let part = fx
        .parts()
        .into_iter()
        .find(|p| p.to_str().unwrap().contains(&format!("{id:020}")))
        .unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[block * MIB + 1234] ^= 0x5a;
    std::fs::write(&part, &bytes).unwrap();
    let meta_path = part.with_file_name("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let end = ((block + 1) * MIB).min(bytes.len());
    meta["block_crc32"][block] = crc32fast::hash(&bytes[block * MIB..end]).into();
    let mut forged = data.to_vec();
    forged[block * MIB + 1234] ^= 0x5a;
    let sha: String = sha2::Sha256::digest(&forged)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    meta["sha256"] = sha.into();
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    forged
}

#[test]
fn a_meta_json_changed_with_its_part_is_refused_by_ranged_reads_cache_fills_and_get() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(15, 2 * MIB + 77);
    let id = evicted(&store, &data, 0);
    let list = fx.root.join("cloud-crc").join(format!("{id:020}.crc"));
    assert!(list.exists(), "the upload keeps the block CRC list");
    store.close().unwrap();
    let forged = tamper_consistently(&fx, id, &data, 1);

    let store = fx.open(&fx.options(None));
    let changed = |r: footage::Result<Vec<u8>>| match r {
        Err(Error::SegmentCorrupt { segment, what, .. }) => {
            assert_eq!(segment, id);
            assert!(what.contains("meta.json changed"), "{what}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|v| v.len())),
    };
    // A ranged read of the changed block, and of a block the attacker left alone.
    changed(range(&store, id, MIB + 1000, 500));
    changed(range(&store, id, 0, 10));
    // Nothing was cached.
    assert!(store.read_cache_blocks().is_empty());
    assert!(fx.cache_files().is_empty());
    // A whole read (what `get` does), through the library and the CLI.
    let mut all = Vec::new();
    let whole = match store.open_segment(id) {
        Ok(mut r) => std::io::Read::read_to_end(&mut r, &mut all).is_ok(),
        Err(_) => false,
    };
    assert!(!whole, "a whole read of the altered copy must fail");
    store.close().unwrap();
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&fx.root)
            .args(["--actor", "cache-test", "get", &id.to_string()])
            .stdin(Stdio::null()),
    );
    assert!(!out.status.success(), "footage get must refuse");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meta.json changed"), "{err}");

    // Without the local list (a segment uploaded before it was kept) the altered copy is
    // taken as it is: the alteration above is one the bucket's own CRCs cannot see.
    std::fs::remove_file(&list).unwrap();
    let store = fx.open(&fx.options(None));
    assert_eq!(
        range(&store, id, MIB + 1000, 500).unwrap(),
        &forged[MIB + 1000..MIB + 1500]
    );
    assert_ne!(
        &forged[MIB + 1000..MIB + 1500],
        &data[MIB + 1000..MIB + 1500]
    );
}

#[test]
fn deleting_a_segment_removes_its_local_block_crc_list() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let id = evicted(&store, &random_bytes(16, MIB), 0);
    let list = fx.root.join("cloud-crc").join(format!("{id:020}.crc"));
    assert!(list.exists());
    store.delete(id, "test").unwrap();
    assert!(!list.exists(), "the list goes with the cloud copy");
}

#[test]
fn a_damaged_local_block_crc_list_is_an_error_not_a_missing_one() {
    let fx = Fixture::new();
    let store = fx.create(64 << 20, None);
    let data = random_bytes(17, MIB + 5);
    let id = evicted(&store, &data, 0);
    store.close().unwrap();
    let list = fx.root.join("cloud-crc").join(format!("{id:020}.crc"));
    let mut bytes = std::fs::read(&list).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // a CRC in the list: the file's own CRC32 no longer holds
    std::fs::write(&list, &bytes).unwrap();
    let store = fx.open(&fx.options(None));
    match range(&store, id, 0, 10) {
        Err(Error::Corruption { path, .. }) => assert_eq!(path, list),
        other => panic!("expected a corrupt list, got {:?}", other.map(|v| v.len())),
    }
    assert!(fx.cache_files().is_empty());
}
