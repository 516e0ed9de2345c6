//! Encryption at rest (AES-256-GCM): what an encrypted store reads back, what its files and
//! its cloud copies reveal, how it refuses a missing or wrong key, and how it catches
//! tampering that keeps every CRC valid.

mod common;

use std::path::{Path, PathBuf};

use common::{random_bytes, volume_files};
use footage::{Error, Key, SegmentMeta, Store, StoreOptions};

/// A run of text that must never appear in an encrypted store's files.
const MARKER: &[u8] = b"PLAINTEXT-MARKER-OF-BODYCAM-FOOTAGE";
const OFFICER: &str = "MET-SECRET-4217";
const T0: i64 = 1_763_647_380_000_000;
/// Chunk capacity of an encrypted store with 64 KiB chunks (32-byte header, 28-byte seal).
const CAP: usize = 64 * 1024 - 32 - 28;

fn key(n: u8) -> Key {
    Key::from_bytes([n; 32])
}

fn options(key: Option<Key>) -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        key,
        ..StoreOptions::default()
    }
}

fn meta(n: i64) -> SegmentMeta {
    SegmentMeta {
        officer: OFFICER.into(),
        device: "AX-B3-00123".into(),
        start_us: T0 + n,
        end_us: T0 + n + 60_000_000,
        gps: vec![footage::GpsFix::from_degrees(T0 + n, 51.5080, -0.1247).unwrap()],
        categories: vec!["evidential".into()],
        ..SegmentMeta::default()
    }
}

/// Random bytes with the marker written every 50,000 bytes.
fn footage_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = random_bytes(seed, len);
    let mut at = 0;
    while at + MARKER.len() <= len {
        v[at..at + MARKER.len()].copy_from_slice(MARKER);
        at += 50_000;
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A record in a volume file.
#[derive(Debug, Clone)]
struct Rec {
    file: PathBuf,
    pos: u64,
    kind: u8,
    len: u32,
    seg: u64,
    index: u32,
}

/// Every record of every volume of a store, walking headers from 4064.
fn records(store_dir: &Path) -> Vec<Rec> {
    let mut out = Vec::new();
    for file in volume_files(store_dir) {
        let data = std::fs::read(&file).unwrap();
        let mut pos = 4064usize;
        while pos + 32 <= data.len() {
            let h = &data[pos..pos + 32];
            if &h[0..4] != b"FTGR" {
                break;
            }
            let len = u32::from_le_bytes(h[8..12].try_into().unwrap());
            out.push(Rec {
                file: file.clone(),
                pos: pos as u64,
                kind: h[5],
                len,
                seg: u64::from_le_bytes(h[16..24].try_into().unwrap()),
                index: u32::from_le_bytes(h[24..28].try_into().unwrap()),
            });
            let end = pos + 32 + len as usize;
            pos = (end + 32).div_ceil(4096) * 4096 - 32;
        }
    }
    out
}

fn chunks_of(store_dir: &Path, seg: u64) -> Vec<Rec> {
    let mut v: Vec<Rec> = records(store_dir)
        .into_iter()
        .filter(|r| r.kind == 1 && r.seg == seg)
        .collect();
    v.sort_by_key(|r| r.index);
    v
}

fn payload(r: &Rec) -> Vec<u8> {
    let data = std::fs::read(&r.file).unwrap();
    data[r.pos as usize + 32..r.pos as usize + 32 + r.len as usize].to_vec()
}

/// Replaces a record's payload (same length) and makes both its CRCs right again, so that
/// only the authentication tag can notice.
fn rewrite_payload(r: &Rec, new: &[u8]) {
    use std::os::unix::fs::FileExt;
    assert_eq!(new.len(), r.len as usize);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(&r.file)
        .unwrap();
    let mut h = [0u8; 32];
    f.read_exact_at(&mut h, r.pos).unwrap();
    h[12..16].copy_from_slice(&crc32fast::hash(new).to_le_bytes());
    let crc = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&h, r.pos).unwrap();
    f.write_all_at(new, r.pos + 32).unwrap();
}

fn nonce(r: &Rec) -> [u8; 12] {
    payload(r)[..12].try_into().unwrap()
}

#[test]
fn an_encrypted_store_reads_back_whole_segments_and_every_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options(Some(key(1)))).unwrap();
    // Empty, one byte, around one chunk, and several volumes' worth.
    let sizes = [0, 1, CAP - 1, CAP, CAP + 1, 3 * CAP + 17, 2_500_000];
    let mut ids = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let data = footage_bytes(i as u64, n);
        let c = store.ingest_bytes(meta(i as i64), &data).unwrap();
        assert_eq!(c.bytes, n as u64);
        ids.push((c.id, data));
    }
    let check = |store: &Store| {
        for (id, data) in &ids {
            assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), data);
            // Ranges that start and end inside, at and across chunk boundaries.
            let n = data.len() as u64;
            let mut s = 0x9E37_79B9u64 ^ id;
            for _ in 0..40 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let off = if n == 0 { 0 } else { (s >> 20) % n };
                let len = (s >> 40) % (3 * CAP as u64);
                let got = store.read_range(*id, off, len).unwrap();
                let end = (off + len).min(n) as usize;
                assert_eq!(got, data[off as usize..end], "segment {id} {off}+{len}");
            }
            for k in 1..4u64 {
                let off = (k * CAP as u64).min(n);
                let got = store.read_range(*id, off.saturating_sub(3), 6).unwrap();
                let lo = off.saturating_sub(3) as usize;
                assert_eq!(got, data[lo..(lo + 6).min(data.len())]);
            }
        }
        let r = store.verify(None, |_| {}).unwrap();
        common::assert_verify_clean(&r, "encrypted store");
        assert_eq!(r.checked, ids.len());
    };
    check(&store);
    // Full chunk records still pack to exactly chunk_size (the seal fits in the capacity).
    let big = chunks_of(dir.path(), ids.last().unwrap().0);
    assert!(big.len() > 30);
    assert!(big[..big.len() - 1]
        .iter()
        .all(|r| r.len as usize == CAP + 28));
    drop(store);
    let store = footage::testing::open_or_create_with(dir.path(), &options(Some(key(1)))).unwrap();
    check(&store);
}

#[test]
fn volume_files_hold_no_plaintext_and_footage_toml_holds_no_key() {
    let enc = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let data = footage_bytes(7, 700_000);
    for (dir, k) in [(&enc, Some(key(3))), (&plain, None)] {
        let store = footage::testing::open_or_create_with(dir.path(), &options(k)).unwrap();
        store.ingest_bytes(meta(0), &data).unwrap();
        store.close().unwrap();
    }
    let sample = &data[123_457..123_457 + 32];
    let leaks = |dir: &Path| {
        volume_files(dir).iter().any(|f| {
            let bytes = std::fs::read(f).unwrap();
            contains(&bytes, MARKER) || contains(&bytes, sample)
        })
    };
    // The control shows the search finds plaintext where there is some.
    assert!(
        leaks(plain.path()),
        "the plain store must hold the plaintext"
    );
    assert!(!leaks(enc.path()), "an encrypted volume holds plaintext");
    let toml = std::fs::read_to_string(enc.path().join("footage.toml")).unwrap();
    let k = key(3);
    assert!(toml.contains("format_version = 2"), "{toml}");
    assert!(toml.contains("encryption = \"aes-256-gcm\""), "{toml}");
    assert!(toml.contains(&format!("key_id = \"{}\"", k.id())), "{toml}");
    assert!(
        !toml.contains(k.hex().as_str()),
        "the key is in footage.toml"
    );
    let plain_toml = std::fs::read_to_string(plain.path().join("footage.toml")).unwrap();
    assert!(plain_toml.contains("format_version = 1"));
    assert!(!plain_toml.contains("encryption") && !plain_toml.contains("key_id"));
}

#[test]
fn a_missing_or_wrong_key_is_refused_with_the_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options(Some(key(1)))).unwrap();
    let id = store.ingest_bytes(meta(0), b"evidence").unwrap().id;
    store.close().unwrap();
    let e = footage::testing::open_or_create_with(dir.path(), &options(None))
        .err()
        .unwrap();
    assert!(matches!(e, Error::KeyRequired { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&key(1).id()) && msg.contains("StoreOptions::key"),
        "{msg}"
    );
    let wrong = StoreOptions {
        key: Some(key(2)),
        ..StoreOptions::default()
    };
    let e = footage::testing::open_or_create_with(dir.path(), &wrong)
        .err()
        .unwrap();
    assert!(matches!(e, Error::WrongKey { .. }), "{e}");
    assert!(e.to_string().contains(&key(2).id()), "{e}");
    // Nothing was damaged by the refused opens.
    let right = StoreOptions {
        key: Some(key(1)),
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(dir.path(), &right).unwrap();
    assert_eq!(store.read_range(id, 0, 100).unwrap(), b"evidence");
    // Asking for encryption without a key cannot be said through the library (the key is
    // the choice); the CLI's `init --encrypt` without one is refused in
    // the_cli_creates_an_encrypted_store_and_needs_its_key_on_every_command.
}

#[test]
fn a_tampered_chunk_with_valid_crcs_is_caught_on_read_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options(Some(key(1)))).unwrap();
    let data = footage_bytes(9, 3 * CAP);
    let id = store.ingest_bytes(meta(0), &data).unwrap().id;
    let chunks = chunks_of(dir.path(), id);
    assert_eq!(chunks.len(), 3);
    let mut p = payload(&chunks[1]);
    p[1000] ^= 0x01; // one bit of ciphertext
    rewrite_payload(&chunks[1], &p);
    // Chunk 0 still reads; chunk 1 fails as tampering, never as wrong bytes.
    assert_eq!(store.read_range(id, 0, 100).unwrap(), data[..100]);
    let e = store.read_range(id, CAP as u64 + 5, 10).unwrap_err();
    assert!(matches!(e, Error::SegmentCorrupt { .. }), "{e}");
    assert!(e.to_string().contains("tampering"), "{e}");
    let r = store.verify(None, |_| {}).unwrap();
    common::assert_verify_only_corrupt(&r, &[id], "tampered chunk");
    assert!(r.errors[0].error.contains("tampering"), "{:?}", r.errors);
}

#[test]
fn chunks_swapped_between_segments_or_positions_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options(Some(key(1)))).unwrap();
    let a = footage_bytes(1, 2 * CAP);
    let b = footage_bytes(2, 2 * CAP);
    let ida = store.ingest_bytes(meta(0), &a).unwrap().id;
    let idb = store.ingest_bytes(meta(1), &b).unwrap().id;
    let (ca, cb) = (chunks_of(dir.path(), ida), chunks_of(dir.path(), idb));
    // A's chunk 0 gets B's chunk 0 sealed payload (CRCs fixed, headers still say A, 0).
    let (pa0, pb0) = (payload(&ca[0]), payload(&cb[0]));
    rewrite_payload(&ca[0], &pb0);
    let e = store.read_range(ida, 0, 10).unwrap_err();
    assert!(e.to_string().contains("tampering"), "{e}");
    rewrite_payload(&ca[0], &pa0);
    assert_eq!(store.read_range(ida, 0, 10).unwrap(), a[..10]);
    // B's two chunks swap places within the segment.
    let pb1 = payload(&cb[1]);
    rewrite_payload(&cb[0], &pb1);
    rewrite_payload(&cb[1], &pb0);
    for off in [0, CAP as u64] {
        let e = store.read_range(idb, off, 10).unwrap_err();
        assert!(e.to_string().contains("tampering"), "{e}");
    }
    let r = store.verify(None, |_| {}).unwrap();
    common::assert_verify_only_corrupt(&r, &[idb], "swapped chunks");
}

#[test]
fn reingest_after_a_torn_tail_reuses_ids_and_offsets_but_never_a_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(Some(key(1)));
    let store = footage::testing::open_or_create_with(dir.path(), &opts).unwrap();
    store.ingest_bytes(meta(0), &footage_bytes(1, CAP)).unwrap();
    // A segment written but never committed, then a crash.
    let mut w = store.begin_segment(meta(1)).unwrap();
    let dead_id = w.id();
    w.write(&footage_bytes(2, 3 * CAP)).unwrap();
    drop(w);
    drop(store);
    let dead = chunks_of(dir.path(), dead_id);
    assert_eq!(dead.len(), 3);
    let dead_nonces: Vec<[u8; 12]> = dead.iter().map(nonce).collect();
    // The power cut tore the first chunk, so the whole dead segment is cut with the tail.
    assert!(dead.iter().all(|d| d.file == dead[0].file));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&dead[0].file)
        .unwrap();
    f.set_len(dead[0].pos + 32 + 1000).unwrap();
    drop(f);
    let store = footage::testing::open_or_create_with(dir.path(), &opts).unwrap();
    assert!(store.open_report().torn_bytes > 0);
    // The new segment gets the dead one's id, and its chunks land where the dead ones were.
    let data = footage_bytes(3, 3 * CAP);
    let c = store.ingest_bytes(meta(2), &data).unwrap();
    assert_eq!(
        c.id, dead_id,
        "the scenario needs the id to be handed out again"
    );
    let new = chunks_of(dir.path(), c.id);
    let at = |r: &Rec| (r.file.clone(), r.pos, r.index);
    assert!(
        new.iter().any(|n| dead.iter().any(|d| at(d) == at(n))),
        "the scenario needs a new chunk at a dead chunk's (volume, offset, index)"
    );
    for n in &new {
        assert!(
            !dead_nonces.contains(&nonce(n)),
            "nonce reused at {:?}",
            at(n)
        );
    }
    // And no two records of the whole store share a nonce.
    let mut all: Vec<[u8; 12]> = records(dir.path())
        .iter()
        .filter(|r| r.kind == 1)
        .map(nonce)
        .chain(dead_nonces)
        .collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);
    assert_eq!(store.read_range(c.id, 0, u64::MAX).unwrap(), data);
}

#[test]
fn a_plain_store_is_unaffected_and_ignores_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options(None)).unwrap();
    let data = footage_bytes(4, 2 * CAP + 5);
    let id = store.ingest_bytes(meta(0), &data).unwrap().id;
    // Plaintext chunks hold the bytes verbatim, then their block CRC trailer (4 blocks of
    // 16 KiB: 4 CRCs and the block size), 64 KiB with the header.
    let chunks = chunks_of(dir.path(), id);
    let cap = 64 * 1024 - 32 - 20;
    assert_eq!(chunks[0].len as usize, 64 * 1024 - 32);
    assert_eq!(payload(&chunks[0])[..cap], data[..cap]);
    drop(store);
    let with_key = StoreOptions {
        key: Some(key(5)),
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(dir.path(), &with_key).unwrap();
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
}

fn with_cloud(dir: &Path, cloud: &Path, k: Option<Key>) -> Store {
    let store = footage::testing::open_or_create_with(dir, &options(k)).unwrap();
    let url = format!("file://{}", cloud.display());
    common::write_cloud_policy(dir, &url);
    store
}

#[test]
fn cloud_copies_are_ciphertext_read_through_decrypts_and_recovery_needs_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = with_cloud(&dir.path().join("s"), &cloud, Some(key(1)));
    let data = footage_bytes(11, 2_500_000); // 3 cloud blocks
    let id = store.ingest_bytes(meta(0), &data).unwrap().id;
    let small = store.ingest_bytes(meta(1), b"short").unwrap().id;
    for i in [id, small] {
        assert!(store.upload(i, "t", &mut |_| {}).unwrap());
        assert!(store.evict(i, "t").unwrap() > 0);
    }
    // Nothing in the bucket reveals the footage or who recorded it where.
    let files = files_under(&cloud);
    assert!(files.len() >= 4, "{files:?}");
    let sample = &data[1_500_000..1_500_032];
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for needle in [
            MARKER,
            sample,
            OFFICER.as_bytes(),
            b"AX-B3-00123",
            b"evidential",
            b"\"gps\"",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{} reveals {:?}",
                f.display(),
                needle
            );
        }
    }
    let meta_json = files.iter().find(|f| f.ends_with("meta.json")).unwrap();
    let text = std::fs::read_to_string(meta_json).unwrap();
    assert!(
        text.contains("\"version\": 2") && text.contains(&key(1).id()),
        "{text}"
    );
    // Evicted segments read through the cloud, whole and in ranges across blocks.
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    for (off, len) in [
        (0u64, 10u64),
        (1_048_570, 20),
        (2_097_100, 400_000),
        (2_499_990, 50),
    ] {
        let end = (off + len).min(data.len() as u64) as usize;
        assert_eq!(
            store.read_range(id, off, len).unwrap(),
            data[off as usize..end]
        );
    }
    assert_eq!(store.read_range(small, 0, 99).unwrap(), b"short");
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "encrypted store");
    store.close().unwrap();

    // A lost station: recovery without the key, or with another, creates nothing.
    let url = format!("file://{}", cloud.display());
    let opts = |k: Option<Key>| StoreOptions {
        key: k,
        ..StoreOptions::default()
    };
    for (k, what) in [(None, "encrypted"), (Some(key(2)), "key id")] {
        let root = dir.path().join("bad");
        let e = Store::recover_from_cloud(&root, &url, None, &opts(k), "it")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(what), "{e}");
        assert!(!root.join("footage.toml").exists());
    }
    let root = dir.path().join("new");
    let (new, report) =
        Store::recover_from_cloud(&root, &url, None, &opts(Some(key(1))), "it").unwrap();
    assert_eq!(report.recovered, 2);
    assert!(new.config().encrypted());
    assert_eq!(new.info(id).unwrap().officer, OFFICER);
    assert_eq!(new.read_range(id, 0, u64::MAX).unwrap(), data);
    drop(new);
    assert!(footage::testing::open_or_create_with(&root, &opts(None)).is_err());
}

#[test]
fn a_tampered_cloud_copy_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = with_cloud(&dir.path().join("s"), &cloud, Some(key(1)));
    let data = footage_bytes(12, 100_000);
    let id = store.ingest_bytes(meta(0), &data).unwrap().id;
    store.upload(id, "t", &mut |_| {}).unwrap();
    store.evict(id, "t").unwrap();
    store.close().unwrap();
    // A sealed block altered: its CRC (or its tag) catches it.
    let meta_json = files_under(&cloud)
        .into_iter()
        .find(|f| f.ends_with("meta.json"))
        .unwrap();
    let part = meta_json.with_file_name("part-00000");
    let mut sealed = std::fs::read(&part).unwrap();
    sealed[40] ^= 0x80;
    std::fs::write(&part, &sealed).unwrap();
    let store = footage::testing::open_or_create_with(dir.path().join("s"), &options(Some(key(1))))
        .unwrap();
    let e = store.read_range(id, 0, 10).unwrap_err().to_string();
    assert!(e.contains("CRC32") || e.contains("tampering"), "{e}");
    common::assert_verify_only_corrupt(
        &store.verify(None, |_| {}).unwrap(),
        &[id],
        "tampered cloud copy",
    );
    drop(store);
    // The sealed meta.json swapped for a plaintext one over plaintext bytes: refused, never
    // served as the segment.
    let fake = b"forged footage".to_vec();
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&fake)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let store_id = std::fs::read_to_string(dir.path().join("s/footage.toml")).unwrap();
    let store_id = store_id
        .lines()
        .find_map(|l| l.strip_prefix("store_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let plain = serde_json::json!({
        "format": "footage-segment", "version": 1, "store_id": store_id, "id": id,
        "officer": "X", "device": "Y", "start_us": T0, "end_us": T0, "start": "", "end": "",
        "bytes": fake.len(), "sha256": sha, "categories": [], "tags": [], "cases": [],
        "holds": [], "gps": [], "committed_us": 0, "uploaded_us": 0,
        "part_size": 64u64 << 20, "block_size": 1u64 << 20,
        "block_crc32": [crc32fast::hash(&fake)],
    });
    std::fs::write(&meta_json, serde_json::to_vec(&plain).unwrap()).unwrap();
    std::fs::write(&part, &fake).unwrap();
    let store = footage::testing::open_or_create_with(dir.path().join("s"), &options(Some(key(1))))
        .unwrap();
    let e = store.read_range(id, 0, 100).unwrap_err().to_string();
    assert!(e.contains("not encrypted"), "{e}");
}

#[test]
fn the_cli_creates_an_encrypted_store_and_needs_its_key_on_every_command() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_footage");
    let dir = tempfile::tempdir().unwrap();
    let (store, keyf) = (dir.path().join("s"), dir.path().join("store.key"));
    let run = |args: &[&str], env_key: Option<&str>| {
        let mut c = Command::new(bin);
        c.arg("--store").arg(&store).args(args);
        c.env_remove("FOOTAGE_KEY").env_remove("FOOTAGE_KEY_FILE");
        if let Some(k) = env_key {
            c.env("FOOTAGE_KEY", k);
        }
        c.output().unwrap()
    };
    let out = run(
        &[
            "init",
            "--encrypt",
            "--new-key-file",
            keyf.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = std::fs::read_to_string(&keyf).unwrap();
    let k = Key::parse(&hex).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&k.id()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keyf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Without the key: refused, naming the key id; with it (file or env): works.
    let out = run(&["stats"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&k.id()));
    assert!(run(&["--key-file", keyf.to_str().unwrap(), "stats"], None)
        .status
        .success());
    assert!(run(&["stats"], Some(hex.trim())).status.success());
    let out = run(&["stats"], Some(&"00".repeat(32)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key"));
    // init never touches an existing store.
    assert!(!run(&["init"], None).status.success());
    // --encrypt without a key creates nothing; a key in FOOTAGE_KEY without --encrypt makes a
    // plaintext store (the key alone is not the choice at the command line).
    let other = dir.path().join("t");
    let init_other = |args: &[&str], env_key: Option<&str>| {
        let mut c = Command::new(bin);
        c.arg("--store").arg(&other).arg("init").args(args);
        c.env_remove("FOOTAGE_KEY").env_remove("FOOTAGE_KEY_FILE");
        if let Some(k) = env_key {
            c.env("FOOTAGE_KEY", k);
        }
        c.output().unwrap()
    };
    let out = init_other(&["--encrypt"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a key"));
    assert!(!other.join("footage.toml").exists());
    assert!(init_other(&[], Some(hex.trim())).status.success());
    let toml = std::fs::read_to_string(other.join("footage.toml")).unwrap();
    assert!(!toml.contains("key_id"), "{toml}");
}

/// Scrub repair and compaction handle sealed chunks: a repair seals the cloud's plaintext
/// again (new nonce), compaction copies sealed records as they are.
#[test]
fn repair_and_compaction_of_an_encrypted_store_keep_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = tempfile::tempdir().unwrap();
    let store = with_cloud(dir.path(), cloud.path(), Some(key(3)));
    let datas: Vec<Vec<u8>> = (0..8)
        .map(|i| footage_bytes(40 + i, 3 * CAP + 77))
        .collect();
    let ids: Vec<u64> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| store.ingest_bytes(meta(i as i64 % 2), d).unwrap().id)
        .collect();
    store.upload(ids[0], "test", &mut |_| {}).unwrap();
    // Rot in an uploaded segment, CRCs made right again: only the tag notices.
    let chunk = &chunks_of(dir.path(), ids[0])[1];
    let old_nonce = nonce(chunk);
    let mut p = payload(chunk);
    p[500] ^= 0x10;
    rewrite_payload(chunk, &p);
    let outcome = store.repair(ids[0]).unwrap();
    assert!(
        matches!(outcome, footage::RepairOutcome::Repaired { .. }),
        "{outcome:?}"
    );
    assert_ne!(nonce(&chunks_of(dir.path(), ids[0])[1]), old_nonce);
    assert_eq!(store.read_range(ids[0], 0, u64::MAX).unwrap(), datas[0]);
    // Compaction after a deletion that left its chunks as dead bytes.
    store.set_punch_holes(false);
    store.delete(ids[1], "test").unwrap();
    store.delete(ids[2], "test").unwrap();
    let s = store.compact(0.0, "test").unwrap();
    assert!(s.bytes_reclaimed > 0 && s.segments_moved > 0, "{s:?}");
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i > 2 || *i == 0) {
        assert_eq!(store.read_range(*id, 0, u64::MAX).unwrap(), datas[i]);
    }
    let r = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&r, "encrypted store");
    store.close().unwrap();
    // Another test of this binary may be starting a `footage` child: between its fork and
    // exec the child holds a copy of every descriptor, the store's LOCK too, for a moment.
    let mut tries = 0;
    let store = loop {
        match footage::testing::open_or_create_with(dir.path(), &options(Some(key(3)))) {
            Err(Error::Locked { .. }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i > 2 || *i == 0) {
        assert_eq!(store.read_range(*id, 0, u64::MAX).unwrap(), datas[i]);
    }
}
