//! Bit rot: single bit flips in every kind of file a store keeps are detected, never turned
//! into wrong data, and never a panic.
//!
//! A small template store (a sealed and an active volume, changes, two checkpoints, a track
//! file, an audit log) is built once; for each flip a fresh copy is made, one bit of one file
//! is flipped (positions drawn from a seeded RNG: half in record headers and metadata
//! records, half anywhere), the store is opened and checked:
//! - volumes: `verify` reports the damage (a corrupt segment or a damaged volume region) for
//!   every flip in a byte that holds data; flips in the zero padding between records change
//!   nothing; every read returns the original bytes or fails;
//! - checkpoints: open falls back (reported in `bad_checkpoints`) and the catalog is identical;
//! - audit log and `HEAD`: `audit --verify` fails;
//! - track file: open rebuilds the file, or area queries fail with a corruption error; never
//!   wrong fixes or results (`track` falls back to the commit record);
//! - footage.toml / policy.toml: open or parse fails, or the catalog is unchanged.
//!
//! `FOOTAGE_BITROT_FLIPS=N` scales the number of flips (default about 2,300 in all).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use footage::format::record::{next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN};
use footage::{GpsFix, Query, SegmentMeta, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = common::T0;

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 256 * 1024,
        ..StoreOptions::default()
    }
}

fn meta(i: i64) -> SegmentMeta {
    let start = T0 + i * 600_000_000;
    SegmentMeta {
        officer: format!("MET-00421{}", i % 2),
        device: format!("AX-B3-0012{i}"),
        start_us: start,
        end_us: start + 120_000_000,
        gps: (0..8)
            .map(|k| {
                GpsFix::from_degrees(start + k * 1_000_000, 51.5 + 0.0002 * k as f64, -0.12)
                    .unwrap()
            })
            .collect(),
        tags: vec![format!("shift-{i}")],
        ..SegmentMeta::default()
    }
}

/// What a store shows about its segments: compared before and after a flip.
#[derive(Debug, PartialEq)]
struct View {
    infos: BTreeMap<u64, footage::SegmentInfo>,
    near: Vec<u64>,
}

fn view(store: &Store) -> View {
    let infos = store
        .segment_ids()
        .into_iter()
        .map(|id| (id, store.info(id).unwrap()))
        .collect();
    let near = store
        .find(&Query::new().near(51.5, -0.12, 200.0))
        .map(|p| p.results.iter().map(|r| r.id).collect())
        .unwrap_or_default();
    View { infos, near }
}

struct Template {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: BTreeMap<u64, Vec<u8>>,
    tracks: BTreeMap<u64, Vec<GpsFix>>,
    view: View,
}

fn template() -> Template {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
    let mut data = BTreeMap::new();
    let mut tracks = BTreeMap::new();
    for i in 0..5i64 {
        let len = [90_000usize, 70_000, 100, 130_000, 5_000][i as usize];
        let bytes = common::random_bytes(i as u64, len);
        let id = store.ingest_bytes(meta(i), &bytes).unwrap().id;
        data.insert(id, bytes);
        tracks.insert(id, meta(i).gps);
        if i == 1 {
            store.checkpoint().unwrap();
        }
    }
    let first = *data.keys().next().unwrap();
    store.categorize(first, "evidential", "sgt.jones").unwrap();
    store.hold(first, "CASE-17", "sgt.jones").unwrap();
    store.hold(first + 3, "CASE-18", "sgt.jones").unwrap();
    let view = view(&store);
    store.close().unwrap();
    Template {
        _dir: dir,
        root,
        data,
        tracks,
        view,
    }
}

fn copy_fresh(t: &Template, work: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(work);
    common::copy_dir(&t.root, work);
    work.to_path_buf()
}

fn flip(path: &Path, bit: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[(bit / 8) as usize] ^= 1 << (bit % 8);
    std::fs::write(path, b).unwrap();
}

/// Byte ranges of a volume that hold data: the 64-byte header, every record header, and the
/// payloads of records. Also returns the ranges of headers and metadata payloads (where half
/// the flips go) and whether the volume is sealed.
/// Byte ranges `[from, to)` of a file.
type Ranges = Vec<(u64, u64)>;

fn volume_layout(bytes: &[u8]) -> (Ranges, Ranges, bool) {
    let mut covered = vec![(0, 64)];
    let mut meta = vec![(0, 64)];
    let mut sealed = false;
    let mut pos = 4064u64;
    while pos + HEADER_LEN <= bytes.len() as u64 {
        let Ok(h) = RecordHeader::decode(&bytes[pos as usize..]) else {
            break;
        };
        let end = record_end(pos, h.len);
        covered.push((pos, end));
        meta.push(match h.kind {
            Kind::Chunk => (pos, pos + HEADER_LEN),
            _ => (pos, end),
        });
        sealed |= h.kind == Kind::Seal;
        pos = next_header_pos(end);
    }
    (covered, meta, sealed)
}

/// A bit position: half the time inside one of `focus`, otherwise anywhere in `len` bytes.
fn pick(rng: &mut StdRng, len: u64, focus: &[(u64, u64)]) -> u64 {
    if !focus.is_empty() && rng.random_bool(0.5) {
        let (a, b) = focus[rng.random_range(0..focus.len())];
        rng.random_range(a * 8..b * 8)
    } else {
        rng.random_range(0..len * 8)
    }
}

fn budget(default: u64) -> u64 {
    let scale: f64 = std::env::var("FOOTAGE_BITROT_FLIPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(1.0, |n| n / 2300.0);
    ((default as f64 * scale).ceil() as u64).max(1)
}

#[derive(Default, Debug)]
struct Tally {
    flips: u64,
    detected: u64,
    harmless: u64,
}

/// Opens the flipped store; every read gives the original bytes or an error.
fn reads_are_right_or_fail(t: &Template, store: &Store) -> bool {
    let mut failed = false;
    for (id, want) in &t.data {
        match store.read_range(*id, 0, want.len() as u64) {
            Ok(got) => assert!(&got == want, "segment {id} read back wrong bytes"),
            Err(_) => failed = true,
        }
    }
    failed
}

#[test]
fn bit_flips_in_volumes_are_detected_and_never_return_wrong_bytes() {
    let t = template();
    let work_dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xb17_0001);
    let vols = common::volume_files(&t.root);
    let mut sealed_seen = false;
    let mut tallies = BTreeMap::new();
    for v in &vols {
        let bytes = std::fs::read(v).unwrap();
        let (covered, focus, sealed) = volume_layout(&bytes);
        sealed_seen |= sealed;
        let kind = if sealed { "sealed" } else { "active" };
        let n = budget(if sealed { 350 } else { 400 });
        let tally: &mut Tally = tallies.entry(kind).or_default();
        for _ in 0..n {
            let bit = pick(&mut rng, bytes.len() as u64, &focus);
            let byte = bit / 8;
            let is_data = covered.iter().any(|&(a, b)| (a..b).contains(&byte));
            let root = copy_fresh(&t, &work_dir.path().join("s"));
            let file = root.join("data").join(v.file_name().unwrap());
            flip(&file, bit);
            let store = footage::testing::open_or_create_with(&root, &options())
                .unwrap_or_else(|e| panic!("open failed after flipping bit {bit} of {v:?}: {e}"));
            let rep = store.open_report().clone();
            let verify = store.verify(None, |_| {}).unwrap();
            let read_failed = reads_are_right_or_fail(&t, &store);
            let detected =
                !verify.is_clean() || !rep.damage.is_empty() || !rep.bad_volumes.is_empty();
            if read_failed {
                assert!(
                    detected,
                    "a read failed but verify saw nothing (bit {bit} of {v:?})"
                );
            }
            // Infos that still load are the originals.
            for (id, want) in &t.view.infos {
                if let Ok(got) = store.info(*id) {
                    assert_eq!(&got, want, "info of segment {id} changed (bit {bit})");
                }
            }
            if is_data {
                assert!(
                    detected,
                    "flip of bit {bit} (byte {byte}) of {kind} volume {v:?} went undetected: \
                     {rep:?} {verify:?}"
                );
            }
            tally.flips += 1;
            if detected {
                tally.detected += 1;
            } else {
                tally.harmless += 1;
                assert!(!read_failed);
            }
            drop(store);
        }
    }
    assert!(sealed_seen, "the template store has no sealed volume");
    for (kind, t) in &tallies {
        println!(
            "bitrot {kind} volumes: {} flips, {} detected, {} in zero padding (no data, nothing changed)",
            t.flips, t.detected, t.harmless
        );
    }
}

#[test]
fn bit_flips_in_the_newest_checkpoint_fall_back_to_an_identical_catalog() {
    let t = template();
    let work_dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xb17_0002);
    let mut ckpts: Vec<PathBuf> = std::fs::read_dir(t.root.join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    ckpts.sort();
    assert_eq!(ckpts.len(), 2, "the template keeps two checkpoints");
    let newest = ckpts.last().unwrap().file_name().unwrap().to_owned();
    let len = std::fs::metadata(ckpts.last().unwrap()).unwrap().len();
    let n = budget(300);
    for _ in 0..n {
        let bit = pick(&mut rng, len, &[(0, 64)]);
        let root = copy_fresh(&t, &work_dir.path().join("s"));
        flip(&root.join("catalog").join(&newest), bit);
        let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
        assert!(
            !store.open_report().bad_checkpoints.is_empty(),
            "flip of bit {bit} of the checkpoint went unnoticed"
        );
        assert_eq!(
            view(&store),
            t.view,
            "catalog differs after checkpoint bit {bit}"
        );
        assert!(!reads_are_right_or_fail(&t, &store));
    }
    println!("bitrot checkpoint: {n} flips, {n} detected (fallback, identical catalog)");
}

#[test]
fn bit_flips_in_the_audit_log_and_head_fail_audit_verify() {
    let t = template();
    let work_dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xb17_0003);
    let audit = t.root.join("audit");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".log") || n == "HEAD"
        })
        .collect();
    files.sort();
    let mut counts = BTreeMap::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let len = std::fs::metadata(f).unwrap().len();
        let n = budget(if name == "HEAD" {
            150
        } else {
            350 / (files.len() as u64 - 1).max(1)
        });
        for _ in 0..n {
            let bit = rng.random_range(0..len * 8);
            let root = copy_fresh(&t, &work_dir.path().join("s"));
            flip(&root.join("audit").join(&name), bit);
            match footage::testing::open_or_create_with(&root, &options()) {
                Ok(store) => {
                    let rep = store.audit_verify().unwrap();
                    assert!(
                        !rep.ok,
                        "flip of bit {bit} of audit/{name} went unnoticed: {rep:?}"
                    );
                    assert_eq!(view(&store), t.view);
                }
                Err(e) => {
                    // Only a clear refusal is acceptable (for example an "unsupported
                    // version" made by the flip), never a panic.
                    let _ = e.to_string();
                }
            }
            *counts.entry(name.clone()).or_insert(0u64) += 1;
        }
    }
    for (name, n) in counts {
        println!("bitrot audit/{name}: {n} flips, {n} detected");
    }
}

#[test]
fn bit_flips_in_the_track_file_never_give_wrong_fixes() {
    let t = template();
    let work_dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xb17_0004);
    let path = t.root.join("catalog/tracks.ftt");
    let len = std::fs::metadata(&path).unwrap().len();
    let n = budget(200);
    let mut rebuilt = 0;
    for _ in 0..n {
        let bit = rng.random_range(0..len * 8);
        let root = copy_fresh(&t, &work_dir.path().join("s"));
        flip(&root.join("catalog/tracks.ftt"), bit);
        let store = footage::testing::open_or_create_with(&root, &options()).unwrap();
        let mut detected = !store.open_report().bad_checkpoints.is_empty();
        rebuilt += u64::from(detected);
        for (id, want) in &t.tracks {
            match store.track(*id) {
                Ok(got) => assert_eq!(&got, want, "wrong track for {id} (bit {bit})"),
                Err(_) => detected = true,
            }
        }
        match store.find(&Query::new().near(51.5, -0.12, 200.0)) {
            Ok(p) => assert_eq!(
                p.results.iter().map(|r| r.id).collect::<Vec<_>>(),
                t.view.near
            ),
            // A damaged track record fails area queries with a corruption error (`track`
            // itself falls back to the commit record, so it stays right).
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        footage::Error::Corruption { .. } | footage::Error::SegmentCorrupt { .. }
                    ),
                    "{e}"
                );
                detected = true;
            }
        }
        assert!(
            detected,
            "flip of bit {bit} of the track file went unnoticed"
        );
    }
    println!("bitrot tracks.ftt: {n} flips, {n} detected ({rebuilt} by open, rest by queries)");
}

#[test]
fn bit_flips_in_config_and_policy_are_refused_or_harmless() {
    let t = template();
    let work_dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xb17_0005);
    let mut refused = 0u64;
    let n = budget(100);
    for _ in 0..n {
        let path = t.root.join("footage.toml");
        let len = std::fs::metadata(&path).unwrap().len();
        let bit = rng.random_range(0..len * 8);
        let root = copy_fresh(&t, &work_dir.path().join("s"));
        flip(&root.join("footage.toml"), bit);
        match footage::testing::open_or_create_with(&root, &options()) {
            Err(_) => refused += 1,
            Ok(store) => {
                let r = store.open_report();
                let reported = !r.bad_volumes.is_empty() || !r.bad_checkpoints.is_empty();
                if reported {
                    refused += 1;
                } else {
                    assert_eq!(view(&store), t.view, "footage.toml bit {bit}");
                }
            }
        }
    }
    println!("bitrot footage.toml: {n} flips, {refused} refused or reported, rest harmless");
    let mut policy_refused = 0u64;
    for _ in 0..n {
        let path = t.root.join("policy.toml");
        let len = std::fs::metadata(&path).unwrap().len();
        let bit = rng.random_range(0..len * 8);
        let root = copy_fresh(&t, &work_dir.path().join("s"));
        flip(&root.join("policy.toml"), bit);
        match footage::retention::policy::Policy::load_or_create(&root) {
            Err(_) => policy_refused += 1,
            Ok(p) => {
                assert!(p.categories.contains_key("default"));
                assert!(p.high_watermark > 0.0 && p.high_watermark <= 1.0);
            }
        }
    }
    println!(
        "bitrot policy.toml: {n} flips, {policy_refused} refused, rest parse to a valid policy"
    );
}
