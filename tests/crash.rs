//! Crash recovery: torn volume tails cut at every record boundary, bit flips in headers and
//! payloads, damaged checkpoints, and format versions from a newer build.
//!
//! A crash is simulated by dropping a store without `close` (no final checkpoint) or by
//! copying the directory of a store that is still open; every write is a `pwrite` straight
//! to the file, so the copy holds everything the store has written.

mod common;

use common::*;
use footage::format::record::{next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN};
use footage::{Error, Store};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One record found by walking a volume file.
#[derive(Debug, Clone, Copy)]
struct Rec {
    pos: u64,
    end: u64,
    kind: Kind,
    a: u64,
}

/// Walks the valid records of a volume from the first header position.
fn records(path: &Path) -> Vec<Rec> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = next_header_pos(64);
    while pos + HEADER_LEN <= data.len() as u64 {
        let Ok(h) = RecordHeader::decode(&data[pos as usize..]) else {
            break;
        };
        let end = record_end(pos, h.len);
        if end > data.len() as u64 {
            break;
        }
        out.push(Rec {
            pos,
            end,
            kind: h.kind,
            a: h.a,
        });
        pos = next_header_pos(end);
    }
    out
}

/// Every record of every volume of a store, keyed by volume file.
fn all_records(store_dir: &Path) -> BTreeMap<PathBuf, Vec<Rec>> {
    volume_files(store_dir)
        .into_iter()
        .map(|p| {
            let r = records(&p);
            (p, r)
        })
        .collect()
}

/// The one volume that does not end in a seal record.
fn active_volume(store_dir: &Path) -> PathBuf {
    let active: Vec<PathBuf> = all_records(store_dir)
        .into_iter()
        .filter(|(_, recs)| recs.last().is_none_or(|r| r.kind != Kind::Seal))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(active.len(), 1, "expected one active volume: {active:?}");
    active[0].clone()
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize] ^= 1 << bit;
    std::fs::write(path, data).unwrap();
}

/// Segments ingested by a test: id → bytes.
type Segments = BTreeMap<u64, Vec<u8>>;

/// Ingests segments of assorted sizes (crossing chunk and volume boundaries) into `store`.
fn ingest_assorted(store: &Store, seed: u64, sizes: &[usize], segs: &mut Segments) {
    for (i, &n) in sizes.iter().enumerate() {
        let data = random_bytes(seed * 1000 + i as u64, n);
        let c = store
            .ingest_bytes(meta("MET-1", &format!("AX-{seed}"), T0 + i as i64), &data)
            .unwrap();
        assert!(!c.duplicate);
        segs.insert(c.id, data);
    }
}

/// Asserts the store holds exactly `segs`, byte for byte.
fn assert_holds_exactly(store: &Store, segs: &Segments, ctx: &str) {
    let ids: Vec<u64> = segs.keys().copied().collect();
    assert_eq!(store.segment_ids(), ids, "{ctx}: visible segments");
    for (id, data) in segs {
        let got = store
            .read_range(*id, 0, u64::MAX)
            .unwrap_or_else(|e| panic!("{ctx}: segment {id}: {e}"));
        assert!(
            got == *data,
            "{ctx}: segment {id} reads back different bytes"
        );
    }
}

/// New footage can be stored after recovery and survives another (crash) reopen.
fn assert_ingest_after_recovery(dir: &Path, mut segs: Segments, ctx: &str) {
    let store = open_small(dir);
    // Segments the test cut away were acknowledged (the audit log lists them): verify's
    // audit cross-check must name each as lost, and the id of a cut segment may be handed
    // out again (the store no longer knows it), which it names too.
    let destroyed: Vec<u64> = store
        .audit_entries(None, None)
        .unwrap()
        .iter()
        .filter(|e| e.action == "ingest")
        .filter_map(|e| e.segment)
        .filter(|id| !segs.contains_key(id))
        .collect();
    let data = random_bytes(4242, 150_000);
    let c = store
        .ingest_bytes(meta("MET-9", "AX-AFTER", T0 + 9), &data)
        .unwrap_or_else(|e| panic!("{ctx}: ingest after recovery: {e}"));
    assert!(!c.duplicate, "{ctx}");
    assert!(!segs.contains_key(&c.id), "{ctx}: id {} reused", c.id);
    segs.insert(c.id, data);
    assert_holds_exactly(&store, &segs, ctx);
    drop(store);
    let store = open_small(dir);
    assert_holds_exactly(&store, &segs, &format!("{ctx}, reopened"));
    let report = store.verify(None, |_| {}).unwrap();
    let report = common::expect_lost_changes(&report, &destroyed, ctx);
    common::assert_verify_clean(&report, ctx);
}

/// Where each segment's commit record is: id → (volume file, record).
fn commit_records(store_dir: &Path) -> BTreeMap<u64, (PathBuf, Rec)> {
    let mut out = BTreeMap::new();
    for (path, recs) in all_records(store_dir) {
        for r in recs.into_iter().filter(|r| r.kind == Kind::Commit) {
            out.insert(r.a, (path.clone(), r));
        }
    }
    out
}

/// Where the original bytes of a volume really end after cutting it at `cut` and appending
/// `tail`: appended bytes that happen to equal the originals (zeros, mostly) restore them.
fn effective_cut(orig: &[u8], cut: u64, tail: &[u8]) -> u64 {
    let rest = orig.get(cut as usize..).unwrap_or_default();
    cut + rest.iter().zip(tail).take_while(|(a, b)| a == b).count() as u64
}

/// Offsets to cut a volume at: every record start and end and one byte either side, the
/// volume header edges, and `random` more points at or after `from`.
fn cut_points(vol: &Path, from: u64, random: usize, seed: u64) -> Vec<u64> {
    let len = std::fs::metadata(vol).unwrap().len();
    let mut cuts = vec![0, 1, 63, 64, 65, 4063, 4064, 4065, len - 1, len];
    for r in records(vol) {
        for x in [r.pos, r.end] {
            cuts.extend([x - 1, x, x + 1]);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    cuts.extend((0..random).map(|_| rng.random_range(from..=len)));
    cuts.retain(|&c| c >= from && c <= len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Cuts a copy of `orig` at each point (some with zeros or garbage after the cut) and checks
/// what survives: segments whose commit record lies wholly before the cut (or in another
/// volume) are intact, the others are gone.
fn check_cuts(base: &Path, orig: &Path, segs: &Segments, cuts: &[u64]) {
    let active = active_volume(orig);
    let name = active.file_name().unwrap().to_owned();
    let commits = commit_records(orig);
    let original = std::fs::read(&active).unwrap();
    for (n, &cut) in cuts.iter().enumerate() {
        // A power cut can also leave the file longer, its tail zeros or stale bytes.
        let tail = match n % 3 {
            0 => Vec::new(),
            1 => vec![0u8; 5000 + n * 1000],
            _ => random_bytes(n as u64, 5000 + n * 1000),
        };
        let ctx = format!(
            "cut at {cut} of {}, then {} tail bytes",
            name.to_string_lossy(),
            tail.len()
        );
        let case = base.join(format!("cut-{n}"));
        copy_dir(orig, &case);
        let vol = case.join("data").join(&name);
        truncate(&vol, cut);
        let mut f = std::fs::OpenOptions::new().append(true).open(&vol).unwrap();
        std::io::Write::write_all(&mut f, &tail).unwrap();
        drop(f);
        let kept = effective_cut(&original, cut, &tail);
        let expected: Segments = segs
            .iter()
            .filter(|(id, _)| {
                let (vol, rec) = &commits[id];
                vol != &active || rec.end <= kept
            })
            .map(|(id, d)| (*id, d.clone()))
            .collect();
        let store = footage::testing::open_or_create_with(&case, &small_options())
            .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
        assert_holds_exactly(&store, &expected, &ctx);
        for id in segs.keys().filter(|id| !expected.contains_key(id)) {
            assert!(
                matches!(store.read_range(*id, 0, 1), Err(Error::NotFound(_))),
                "{ctx}: segment {id} whose commit was cut is visible"
            );
        }
        drop(store);
        assert_ingest_after_recovery(&case, expected, &ctx);
        std::fs::remove_dir_all(&case).unwrap();
    }
}

#[test]
fn cutting_the_active_volume_at_any_point_keeps_exactly_the_whole_commits() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = open_small(&orig);
    let cap = 64 * 1024 - 32;
    let mut segs = Segments::new();
    // ~1.5 MiB: the first volume fills and is sealed, one segment spans both volumes.
    ingest_assorted(
        &store,
        1,
        &[
            300_000,
            0,
            1,
            cap,
            250_000,
            2 * cap + 5,
            400_000,
            10,
            90_000,
        ],
        &mut segs,
    );
    // An ingest that never commits leaves dead chunks at the tail.
    let mut w = store.begin_segment(meta("MET-1", "AX-1", T0)).unwrap();
    w.write(&random_bytes(77, 100_000)).unwrap();
    drop(w);
    drop(store);
    assert!(
        !orig.join("catalog").exists() || checkpoint_files(&orig).is_empty(),
        "no checkpoint may cover the segments"
    );
    assert!(volume_files(&orig).len() >= 2);
    let active = active_volume(&orig);
    let cuts = cut_points(&active, 0, 25, 11);
    assert!(cuts.len() > 40, "{}", cuts.len());
    check_cuts(base.path(), &orig, &segs, &cuts);
}

#[test]
fn cutting_the_tail_written_after_a_checkpoint_keeps_the_checkpointed_segments() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = open_small(&orig);
    let mut segs = Segments::new();
    ingest_assorted(&store, 2, &[200_000, 5, 70_000], &mut segs);
    store.checkpoint().unwrap();
    let active = active_volume(&orig);
    let checkpointed = std::fs::metadata(&active).unwrap().len();
    ingest_assorted(&store, 3, &[100_000, 64 * 1024, 3, 150_000], &mut segs);
    drop(store);
    assert_eq!(active_volume(&orig), active, "test expects one volume");
    let cuts = cut_points(&active, checkpointed, 15, 12);
    assert!(cuts.len() > 20, "{}", cuts.len());
    check_cuts(base.path(), &orig, &segs, &cuts);
}

/// What a bit flip hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    ChunkHeader,
    ChunkPayload,
    CommitHeader,
    CommitPayload,
    SealRecord,
    VolumeHeader,
}

const TARGETS: [Target; 6] = [
    Target::ChunkHeader,
    Target::ChunkPayload,
    Target::CommitHeader,
    Target::CommitPayload,
    Target::SealRecord,
    Target::VolumeHeader,
];

/// Picks a bit to flip of the given kind: (volume file name, offset, bit, segments hit).
fn pick_flip(
    recs: &BTreeMap<PathBuf, Vec<Rec>>,
    segs: &Segments,
    target: Target,
    rng: &mut impl Rng,
) -> (std::ffi::OsString, u64, u8, Vec<u64>) {
    let owned = |ids: &mut dyn Iterator<Item = u64>| -> Vec<u64> {
        let mut v: Vec<u64> = ids.filter(|id| segs.contains_key(id)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if target == Target::VolumeHeader {
        let vols: Vec<&PathBuf> = recs.keys().collect();
        let vol = vols[rng.random_range(0..vols.len())];
        let hit = owned(
            &mut recs[vol]
                .iter()
                .filter(|r| r.kind != Kind::Seal)
                .map(|r| r.a),
        );
        return (
            vol.file_name().unwrap().to_owned(),
            rng.random_range(0..64),
            rng.random_range(0..8),
            hit,
        );
    }
    let kind = match target {
        Target::ChunkHeader | Target::ChunkPayload => Kind::Chunk,
        Target::CommitHeader | Target::CommitPayload => Kind::Commit,
        _ => Kind::Seal,
    };
    let all: Vec<(&PathBuf, Rec)> = recs
        .iter()
        .flat_map(|(p, rs)| rs.iter().map(move |r| (p, *r)))
        .filter(|(_, r)| r.kind == kind && r.end > r.pos + HEADER_LEN)
        .collect();
    let (vol, r) = all[rng.random_range(0..all.len())];
    let offset = match target {
        Target::ChunkHeader | Target::CommitHeader | Target::SealRecord => {
            rng.random_range(r.pos..r.pos + HEADER_LEN)
        }
        _ => rng.random_range(r.pos + HEADER_LEN..r.end),
    };
    let hit = if kind == Kind::Seal {
        Vec::new()
    } else {
        owned(&mut std::iter::once(r.a))
    };
    (
        vol.file_name().unwrap().to_owned(),
        offset,
        rng.random_range(0..8),
        hit,
    )
}

/// Flips bits in copies of `orig` and checks that damage is never served as data: a segment
/// hit is either gone (allowed only when `may_vanish`, and then the open report says why) or
/// fails to read with an error naming it and is listed by `verify`; every other segment reads
/// back intact; new footage can be stored afterwards.
fn check_flips(
    base: &Path,
    orig: &Path,
    segs: &Segments,
    may_vanish: bool,
    flips: usize,
    seed: u64,
) {
    let recs = all_records(orig);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for n in 0..flips {
        let target = TARGETS[n % TARGETS.len()];
        let (vol, offset, bit, hit) = pick_flip(&recs, segs, target, &mut rng);
        let ctx = format!(
            "{target:?} flip of bit {bit} at {offset} of {}, hitting {hit:?}",
            vol.to_string_lossy()
        );
        let case = base.join(format!("flip-{seed}-{n}"));
        copy_dir(orig, &case);
        flip_bit(&case.join("data").join(&vol), offset, bit);
        let store = footage::testing::open_or_create_with(&case, &small_options())
            .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
        let report = store.open_report().clone();
        let visible = store.segment_ids();
        for (id, data) in segs {
            let read = store.read_range(*id, 0, u64::MAX);
            if !hit.contains(id) {
                match read {
                    Ok(got) => assert!(got == *data, "{ctx}: segment {id} changed"),
                    Err(e) => panic!("{ctx}: segment {id} was not hit but fails: {e}"),
                }
                continue;
            }
            match read {
                Ok(_) => panic!("{ctx}: segment {id} was hit but reads without error"),
                Err(Error::NotFound(_)) => {
                    assert!(may_vanish, "{ctx}: segment {id} vanished");
                    if target == Target::CommitPayload && !report.damage.is_empty() {
                        let named = format!("commit record of segment {id}:");
                        assert!(
                            report.damage.iter().any(|d| d.contains(&named)),
                            "{ctx}: the damage report does not name segment {id}: {report:?}"
                        );
                    }
                    assert!(!visible.contains(id), "{ctx}");
                    assert!(
                        !report.damage.is_empty()
                            || report.torn_bytes > 0
                            || !report.bad_volumes.is_empty(),
                        "{ctx}: segment {id} vanished without a word: {report:?}"
                    );
                }
                Err(e) => assert!(
                    e.to_string().contains(&format!("segment {id} ")),
                    "{ctx}: the error does not name segment {id}: {e}"
                ),
            }
        }
        let v = store.verify(None, |_| {}).unwrap();
        // A damaged volume header makes the volume unusable: its segments are listed as
        // unreachable (`lost`) rather than corrupt. Either way verify names them, and
        // nothing else.
        let want: Vec<u64> = hit
            .iter()
            .copied()
            .filter(|id| visible.contains(id))
            .collect();
        // A hit segment that vanished was acknowledged: the audit cross-check names it.
        let vanished: Vec<u64> = hit
            .iter()
            .copied()
            .filter(|id| !visible.contains(id))
            .collect();
        let v = common::expect_lost_changes(&v, &vanished, &ctx);
        common::assert_verify_flags_only(&v, &want, &ctx);
        let data = random_bytes(5000 + n as u64, 80_000);
        let c = store
            .ingest_bytes(meta("MET-9", "AX-AFTER", T0 + 9), &data)
            .unwrap_or_else(|e| panic!("{ctx}: ingest after damage: {e}"));
        drop(store);
        let store = open_small(&case);
        assert_eq!(store.read_range(c.id, 0, u64::MAX).unwrap(), data, "{ctx}");
        drop(store);
        std::fs::remove_dir_all(&case).unwrap();
    }
}

/// A store of two volumes (the first sealed) with dead chunks at the tail, dropped without
/// `close`, so nothing but the log knows its segments.
fn crashed_store(dir: &Path) -> Segments {
    let store = open_small(dir);
    let cap = 64 * 1024 - 32;
    let mut segs = Segments::new();
    ingest_assorted(
        &store,
        5,
        &[300_000, 1, 2 * cap, 250_000, 7, 400_000, cap + 1, 90_000],
        &mut segs,
    );
    let mut w = store.begin_segment(meta("MET-1", "AX-1", T0)).unwrap();
    w.write(&random_bytes(78, 100_000)).unwrap();
    drop(w);
    drop(store);
    segs
}

#[test]
fn bit_flips_without_a_checkpoint_are_found_by_the_scan_or_on_read() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let segs = crashed_store(&orig);
    check_flips(base.path(), &orig, &segs, true, 36, 21);
}

#[test]
fn bit_flips_behind_a_checkpoint_are_found_on_read_and_by_verify() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let segs = crashed_store(&orig);
    open_small(&orig).close().unwrap();
    assert!(!checkpoint_files(&orig).is_empty());
    check_flips(base.path(), &orig, &segs, false, 36, 22);
}

fn checkpoint_files(store_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store_dir.join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    v.sort();
    v
}

/// Ways to damage a checkpoint file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip(usize),
    FlipFromEnd(usize),
    Truncate(usize),
    TruncateFromEnd(usize),
    Garbage,
    Delete,
}

fn damage(path: &Path, how: Damage) {
    let mut data = std::fs::read(path).unwrap();
    let n = data.len();
    match how {
        Damage::Flip(i) => data[i] ^= 0x08,
        Damage::FlipFromEnd(i) => data[n - 1 - i] ^= 0x40,
        Damage::Truncate(len) => data.truncate(len),
        Damage::TruncateFromEnd(k) => data.truncate(n - k),
        Damage::Garbage => data = random_bytes(3, n),
        Damage::Delete => return std::fs::remove_file(path).unwrap(),
    }
    std::fs::write(path, data).unwrap();
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_older_one_or_a_full_replay() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = open_small(&orig);
    let mut segs = Segments::new();
    ingest_assorted(&store, 6, &[200_000, 3, 100_000], &mut segs);
    store.checkpoint().unwrap();
    // Fills the first volume, so the second checkpoint knows a volume the first does not.
    ingest_assorted(&store, 7, &[500_000, 300_000, 0], &mut segs);
    store.checkpoint().unwrap();
    ingest_assorted(&store, 8, &[150_000, 20], &mut segs);
    drop(store);
    assert!(volume_files(&orig).len() >= 2);
    let ckpts = checkpoint_files(&orig);
    assert_eq!(ckpts.len(), 2, "{ckpts:?}");
    let (older, newest) = (
        ckpts[0].file_name().unwrap().to_owned(),
        ckpts[1].file_name().unwrap().to_owned(),
    );
    let cases = [
        Damage::Flip(0),
        Damage::Flip(9),
        Damage::Flip(20),
        Damage::Flip(62),
        Damage::Flip(70),
        Damage::FlipFromEnd(0),
        Damage::FlipFromEnd(5),
        Damage::Truncate(0),
        Damage::Truncate(40),
        Damage::Truncate(64),
        Damage::TruncateFromEnd(1),
        Damage::TruncateFromEnd(17),
        Damage::Garbage,
        Damage::Delete,
    ];
    for (n, how) in cases.into_iter().enumerate() {
        for both in [false, true] {
            let ctx = format!(
                "{how:?} of the newest checkpoint{}",
                if both { " and the older" } else { "" }
            );
            let case = base.path().join(format!("ckpt-{n}-{both}"));
            copy_dir(&orig, &case);
            damage(&case.join("catalog").join(&newest), how);
            if both {
                damage(&case.join("catalog").join(&older), Damage::Flip(30));
            }
            let store = footage::testing::open_or_create_with(&case, &small_options())
                .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
            let report = store.open_report().clone();
            if both {
                assert_eq!(report.checkpoint, None, "{ctx}");
            } else {
                let used = report.checkpoint.clone().unwrap_or_default();
                assert!(
                    used.ends_with(&*older.to_string_lossy()),
                    "{ctx}: used {used:?}"
                );
            }
            if !matches!(how, Damage::Delete) {
                let name = newest.to_string_lossy();
                assert!(
                    report.bad_checkpoints.iter().any(|b| b.contains(&*name)),
                    "{ctx}: {report:?}"
                );
            }
            assert_holds_exactly(&store, &segs, &ctx);
            drop(store);
            assert_ingest_after_recovery(&case, segs.clone(), &ctx);
            std::fs::remove_dir_all(&case).unwrap();
        }
    }
    // A damaged older checkpoint does not matter while the newest is good.
    let case = base.path().join("older-only");
    copy_dir(&orig, &case);
    damage(&case.join("catalog").join(&older), Damage::Garbage);
    let store = open_small(&case);
    let used = store.open_report().checkpoint.clone().unwrap_or_default();
    assert!(used.ends_with(&*newest.to_string_lossy()), "used {used:?}");
    assert_holds_exactly(&store, &segs, "damaged older checkpoint");
}

/// Rewrites bytes of a file and fixes up a CRC32 over `covered`, stored at `crc_at`.
fn patch(path: &Path, at: usize, bytes: &[u8], covered: std::ops::Range<usize>, crc_at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at..at + bytes.len()].copy_from_slice(bytes);
    let crc = crc32fast::hash(&data[covered]);
    data[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, data).unwrap();
}

/// A version number far beyond any this build (or the next few) writes.
const FUTURE: u16 = 60_000;
const FUTURE_U8: u8 = 200;

/// Asserts that opening fails with a clear "newer format" error naming `what`.
fn assert_refused_as_newer(dir: &Path, what: &str, found: u16, ctx: &str) {
    match footage::testing::open_or_create_with(dir, &small_options()) {
        Err(e @ Error::UnsupportedVersion { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(what), "{ctx}: {msg}");
            assert!(
                msg.contains(&format!("format version {found},")),
                "{ctx}: {msg}"
            );
            assert!(msg.contains("use a newer footage"), "{ctx}: {msg}");
        }
        Err(e) => panic!("{ctx}: wrong error: {e}"),
        Ok(_) => panic!("{ctx}: a store written by a newer version was opened"),
    }
}

#[test]
fn a_newer_format_version_anywhere_is_refused_clearly_and_left_untouched() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let segs = crashed_store(&orig);
    let active = active_volume(&orig);
    let name = active.file_name().unwrap().to_owned();
    let recs = records(&active);
    let last_commit = *recs.iter().rev().find(|r| r.kind == Kind::Commit).unwrap();
    let first_chunk = *recs.iter().find(|r| r.kind == Kind::Chunk).unwrap();
    let future = FUTURE.to_le_bytes();

    // Volume header: u16 version at 8, CRC of 0..60 at 60.
    let case = base.path().join("volume");
    copy_dir(&orig, &case);
    patch(&case.join("data").join(&name), 8, &future, 0..60, 60);
    assert_refused_as_newer(&case, "volume in ", FUTURE, "volume header");

    // Record header (u8 version at 4, CRC of 0..28 at 28), in the scanned log: the last
    // commit record of the active volume, and a chunk in its middle.
    for (what, r) in [("commit", last_commit), ("chunk", first_chunk)] {
        let case = base.path().join(format!("record-{what}"));
        copy_dir(&orig, &case);
        let vol = case.join("data").join(&name);
        let len = std::fs::metadata(&vol).unwrap().len();
        let p = r.pos as usize;
        patch(&vol, p + 4, &[FUTURE_U8], p..p + 28, p + 28);
        let ctx = format!("{what} record header");
        assert_refused_as_newer(&case, "record in ", FUTURE_U8.into(), &ctx);
        assert_eq!(
            std::fs::metadata(&vol).unwrap().len(),
            len,
            "{what}: volume cut"
        );
    }

    // Commit payload: u16 version first; payload CRC at 12 and header CRC at 28.
    let case = base.path().join("commit");
    copy_dir(&orig, &case);
    let vol = case.join("data").join(&name);
    let len = std::fs::metadata(&vol).unwrap().len();
    let (p, e) = (last_commit.pos as usize, last_commit.end as usize);
    patch(&vol, p + 32, &future, p + 32..e, p + 12);
    patch(&vol, p, &[], p..p + 28, p + 28);
    assert_refused_as_newer(&case, "commit record in ", FUTURE, "commit payload");
    assert_eq!(std::fs::metadata(&vol).unwrap().len(), len, "volume cut");

    // Behind a checkpoint the record is only met on read: the read fails clearly.
    let case = base.path().join("record-read");
    copy_dir(&orig, &case);
    open_small(&case).close().unwrap();
    let p = first_chunk.pos as usize;
    let vol = case.join("data").join(&name);
    patch(&vol, p + 4, &[FUTURE_U8], p..p + 28, p + 28);
    let store = open_small(&case);
    let id = first_chunk.a;
    assert!(segs.contains_key(&id));
    let e = store.read_range(id, 0, u64::MAX).unwrap_err().to_string();
    assert!(e.contains(&format!("segment {id} ")), "{e}");
    assert!(e.contains("format version 200 is not supported"), "{e}");
    drop(store);

    // Checkpoint header: u16 version at 8, CRC of 0..60 at 60.
    let ckpt = checkpoint_files(&case).pop().unwrap();
    patch(&ckpt, 8, &future, 0..60, 60);
    assert_refused_as_newer(&case, "checkpoint in ", FUTURE, "checkpoint");

    // Configuration.
    let case = base.path().join("config");
    copy_dir(&orig, &case);
    let cfg = case.join(footage::CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("format_version = 1\n"), "{text}");
    let newer = text.replace("format_version = 1\n", "format_version = 60000\n");
    std::fs::write(&cfg, newer).unwrap();
    assert_refused_as_newer(&case, "configuration in ", FUTURE, "configuration");
}

/// A GPS track of `n` fixes south and west of Greenwich, one a second from `start`.
fn track(seed: u64, start: i64, n: usize) -> Vec<footage::GpsFix> {
    (0..n)
        .map(|i| {
            let k = (seed as f64) * 0.01 + i as f64 * 0.0001;
            footage::GpsFix::from_degrees(start + i as i64 * 1_000_000, -33.8 - k, -151.2 + k)
                .unwrap()
        })
        .collect()
}

#[test]
fn damage_to_the_track_file_never_yields_wrong_gps_fixes() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = open_small(&orig);
    let mut segs = Segments::new();
    let mut tracks = BTreeMap::new();
    let mut ingest = |store: &Store, k: u64| {
        let mut m = meta("MET-1", "AX-1", T0 + k as i64);
        m.gps = track(k, T0 + k as i64, 1 + (k as usize * 37) % 200);
        let data = random_bytes(600 + k, 30_000 + k as usize * 1000);
        let c = store.ingest_bytes(m.clone(), &data).unwrap();
        segs.insert(c.id, data);
        tracks.insert(c.id, m.gps);
    };
    for k in 0..6 {
        ingest(&store, k);
    }
    store.checkpoint().unwrap();
    // These tracks are only in the log (and in memory) when the store crashes.
    for k in 6..9 {
        ingest(&store, k);
    }
    drop(store);
    let tracks_file = |dir: &Path| dir.join("catalog").join("tracks.ftt");
    let len = std::fs::metadata(tracks_file(&orig))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(len > 64, "the checkpoint wrote tracks ({len} bytes)");

    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    type Corrupter = Box<dyn Fn(&Path)>;
    let mut cases: Vec<(String, Corrupter)> = vec![
        (
            "delete".into(),
            Box::new(|p| std::fs::remove_file(p).unwrap()),
        ),
        (
            "garbage appended".into(),
            Box::new(|p| {
                let mut d = std::fs::read(p).unwrap();
                d.extend(random_bytes(9, 3000));
                std::fs::write(p, d).unwrap();
            }),
        ),
    ];
    for cut in [0, 10, 63, 64, 65, len / 2, len - 1] {
        cases.push((format!("cut to {cut}"), Box::new(move |p| truncate(p, cut))));
    }
    for _ in 0..24 {
        let at = rng.random_range(0..len);
        let bit = rng.random_range(0..8u8);
        cases.push((
            format!("bit {bit} flipped at {at}"),
            Box::new(move |p| flip_bit(p, at, bit)),
        ));
    }
    for (n, (what, damage)) in cases.iter().enumerate() {
        let ctx = format!("track file: {what}");
        let case = base.path().join(format!("tracks-{n}"));
        copy_dir(&orig, &case);
        damage(&tracks_file(&case));
        let store = footage::testing::open_or_create_with(&case, &small_options())
            .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
        assert_holds_exactly(&store, &segs, &ctx);
        for (id, want) in &tracks {
            match store.track(*id) {
                Ok(got) => assert!(got == *want, "{ctx}: segment {id} has a wrong track"),
                Err(e) => assert!(
                    e.to_string().contains(&format!("segment {id} ")),
                    "{ctx}: the error does not name segment {id}: {e}"
                ),
            }
        }
        let everywhere = footage::Query::new().bbox(-40.0, -160.0, -30.0, -140.0);
        match store.find(&everywhere) {
            Ok(page) => {
                let found: Vec<u64> = page.results.iter().map(|r| r.id).collect();
                let want: Vec<u64> = tracks.keys().copied().collect();
                assert_eq!(found, want, "{ctx}: find");
            }
            Err(e) => assert!(
                tracks
                    .keys()
                    .any(|id| e.to_string().contains(&format!("segment {id}:"))),
                "{ctx}: find fails without naming the segment: {e}"
            ),
        }
        drop(store);
        // New tracks after recovery; every track stays right; a query that still meets the
        // damage names it, and deleting the track file as it says rebuilds it.
        let store = open_small(&case);
        let mut m = meta("MET-2", "AX-2", T0);
        m.gps = track(99, T0, 50);
        let c = store.ingest_bytes(m.clone(), b"after").unwrap();
        store.close().unwrap();
        let all: Vec<u64> = tracks.keys().copied().chain([c.id]).collect();
        for rebuilt in [false, true] {
            let store = open_small(&case);
            assert_eq!(store.track(c.id).unwrap(), m.gps, "{ctx}");
            for (id, want) in &tracks {
                assert!(store.track(*id).unwrap() == *want, "{ctx}: segment {id}");
            }
            match store.find(&everywhere) {
                Ok(page) => {
                    let mut found: Vec<u64> = page.results.iter().map(|r| r.id).collect();
                    found.sort_unstable();
                    assert_eq!(found, all, "{ctx}: find after reopen");
                    break;
                }
                Err(e) => {
                    assert!(!rebuilt, "{ctx}: rebuilt track file still fails: {e}");
                    assert!(e.to_string().contains("delete it and reopen"), "{e}");
                    drop(store);
                    std::fs::remove_file(tracks_file(&case)).unwrap();
                }
            }
        }
        std::fs::remove_dir_all(&case).unwrap();
    }
}

/// Labels and holds of a segment, as `info` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Labels {
    categories: Vec<String>,
    cases: Vec<String>,
    tags: Vec<String>,
    holds: Vec<String>,
}

impl Labels {
    fn of(info: &footage::SegmentInfo) -> Labels {
        Labels {
            categories: info.categories.clone(),
            cases: info.cases.clone(),
            tags: info.tags.clone(),
            holds: info.holds.clone(),
        }
    }

    fn apply(&mut self, change: &footage::Change) {
        use footage::Change::*;
        let add = |l: &mut Vec<String>, v: &str| {
            if !l.iter().any(|x| x == v) {
                l.push(v.to_string());
                l.sort();
            }
        };
        match change {
            Categorize(c) => add(&mut self.categories, c),
            Tag(t) => add(&mut self.tags, t),
            AddCase(c) => add(&mut self.cases, c),
            Hold(c) => {
                add(&mut self.cases, c);
                add(&mut self.holds, c);
            }
            Release(c) => self.holds.retain(|h| h != c),
            Uncategorize(c) => self.categories.retain(|x| x != c),
            Untag(t) => self.tags.retain(|x| x != t),
            RemoveCase(c) => self.cases.retain(|x| x != c),
            other => panic!("the model does not know {other:?}"),
        }
    }
}

#[test]
fn cutting_the_change_log_keeps_exactly_the_acknowledged_changes() {
    use footage::Change::*;
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = open_small(&orig);
    let mut segs = Segments::new();
    ingest_assorted(&store, 40, &[100_000, 10, 70_000], &mut segs);
    let ids: Vec<u64> = segs.keys().copied().collect();
    let initial = Labels::of(&store.info(ids[0]).unwrap());
    let changes = [
        (ids[0], Hold("OP-TRIDENT".into())),
        (ids[1], Categorize("evidential".into())),
        (ids[0], Categorize("evidential".into())),
        (ids[2], Tag("arrest".into())),
        (ids[0], Hold("OP-NIMROD".into())),
        (ids[1], AddCase("CAD-7".into())),
        (ids[0], Release("OP-TRIDENT".into())),
        (ids[2], Untag("test".into())),
        (ids[1], Uncategorize("evidential".into())),
        (ids[2], Hold("OP-NIMROD".into())),
    ];
    for (id, c) in &changes {
        store.change(*id, c, "sgt.jones").unwrap();
    }
    drop(store);
    // The state of each segment after its first k changes.
    let state_after = |id: u64, k: usize| {
        let mut l = initial.clone();
        for (_, c) in changes.iter().filter(|(i, _)| *i == id).take(k) {
            l.apply(c);
        }
        l
    };
    let recs = all_records(&orig);
    let (change_vol, change_recs) = recs
        .iter()
        .find(|(_, rs)| rs.iter().any(|r| r.kind == Kind::Change))
        .unwrap();
    assert!(change_recs.iter().all(|r| r.kind == Kind::Change));
    assert_eq!(change_recs.len(), changes.len());
    let name = change_vol.file_name().unwrap().to_owned();
    let cuts = cut_points(change_vol, 0, 10, 41);
    let original = std::fs::read(change_vol).unwrap();
    for (n, &cut) in cuts.iter().enumerate() {
        let tail = vec![0u8; if n % 2 == 1 { 9000 } else { 0 }];
        let ctx = format!("change log cut at {cut}, then {} zeros", tail.len());
        let case = base.path().join(format!("changes-{n}"));
        copy_dir(&orig, &case);
        let vol = case.join("data").join(&name);
        truncate(&vol, cut);
        let mut f = std::fs::OpenOptions::new().append(true).open(&vol).unwrap();
        std::io::Write::write_all(&mut f, &tail).unwrap();
        drop(f);
        let cut = effective_cut(&original, cut, &tail);
        let store = footage::testing::open_or_create_with(&case, &small_options())
            .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
        assert_holds_exactly(&store, &segs, &ctx);
        for &id in &ids {
            let kept = change_recs
                .iter()
                .filter(|r| r.a == id && r.end <= cut)
                .count();
            let got = Labels::of(&store.info(id).unwrap());
            assert_eq!(got, state_after(id, kept), "{ctx}: segment {id}");
        }
        // Changes go on after recovery and survive another crash.
        let before = Labels::of(&store.info(ids[1]).unwrap());
        store.hold(ids[1], "OP-AFTER", "pc.smith").unwrap();
        drop(store);
        let store = open_small(&case);
        let mut want = before;
        want.apply(&Hold("OP-AFTER".into()));
        assert_eq!(Labels::of(&store.info(ids[1]).unwrap()), want, "{ctx}");
        drop(store);
        std::fs::remove_dir_all(&case).unwrap();
    }
}
