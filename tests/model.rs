//! A state-machine test: random sequences of ingests (some of them duplicates), range reads,
//! clean and crash reopens and checkpoints, checked against an in-memory model of what the
//! store has acknowledged (id → bytes, plus the (device, SHA-256) dedup index).

mod common;

use common::*;
use footage::Store;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const DAY_US: i64 = 86_400_000_000;
const DEVICES: u8 = 2;

#[derive(Debug, Clone)]
enum Op {
    /// New bytes: `len` bytes from `seed`, from camera `device`, recorded `day` days after T0.
    Ingest {
        len: usize,
        seed: u8,
        device: u8,
        day: u8,
    },
    /// The bytes of an earlier ingest again, from `device` (a duplicate if it is the same one).
    Reingest {
        pick: Index,
        device: u8,
        day: u8,
    },
    /// `len` bytes of a stored segment from a random offset.
    Read {
        pick: Index,
        offset: u32,
        len: u32,
    },
    /// `close`, then open again.
    Reopen,
    /// Open a copy of the directory of the open store, as a crash would leave it.
    CrashReopen,
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..300 * 1024, any::<u8>(), 0..DEVICES, 0u8..6)
            .prop_map(|(len, seed, device, day)| Op::Ingest { len, seed, device, day }),
        3 => (any::<Index>(), 0..DEVICES, 0u8..6)
            .prop_map(|(pick, device, day)| Op::Reingest { pick, device, day }),
        4 => (any::<Index>(), any::<u32>(), 0u32..200_000)
            .prop_map(|(pick, offset, len)| Op::Read { pick, offset, len }),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashReopen),
        1 => Just(Op::Checkpoint),
    ]
}

/// What the store has acknowledged.
#[derive(Default)]
struct Model {
    segments: BTreeMap<u64, Vec<u8>>,
    /// Device and GPS track of each segment.
    meta: BTreeMap<u64, (String, Vec<footage::GpsFix>)>,
    dedup: HashMap<(String, [u8; 32]), u64>,
    /// Every payload ingested so far, for re-ingesting.
    payloads: Vec<Vec<u8>>,
}

struct Harness {
    base: tempfile::TempDir,
    dir: PathBuf,
    generation: usize,
    store: Option<Store>,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("store-0");
        let store = open_small(&dir);
        Harness {
            base,
            dir,
            generation: 0,
            store: Some(store),
            model: Model::default(),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn ingest(&mut self, data: Vec<u8>, device: u8, day: u8) {
        let device = format!("AX-{device}");
        let sha: [u8; 32] = Sha256::digest(&data).into();
        let start = T0 + i64::from(day) * DAY_US;
        let m = meta("MET-1", &device, start);
        let c = self.store().ingest_bytes(m.clone(), &data).unwrap();
        assert_eq!(c.sha256, sha);
        assert_eq!(c.bytes, data.len() as u64);
        let key = (device, sha);
        match self.model.dedup.get(&key) {
            Some(&id) => {
                assert!(c.duplicate, "same bytes from {} stored twice", key.0);
                assert_eq!(c.id, id);
            }
            None => {
                assert!(!c.duplicate, "new bytes reported as duplicate of {}", c.id);
                assert!(
                    !self.model.segments.contains_key(&c.id),
                    "id {} reused",
                    c.id
                );
                self.model.dedup.insert(key, c.id);
                self.model.segments.insert(c.id, data.clone());
                self.model.meta.insert(c.id, (m.device, m.gps));
            }
        }
        self.model.payloads.push(data);
    }

    fn reopen_at(&mut self, dir: &Path) {
        self.store = Some(
            footage::testing::open_or_create_with(dir, &small_options())
                .unwrap_or_else(|e| panic!("reopen: {e}")),
        );
        self.check_all();
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Ingest {
                len,
                seed,
                device,
                day,
            } => {
                let data = random_bytes(u64::from(*seed) << 32 | *len as u64, *len);
                self.ingest(data, *device, *day);
            }
            Op::Reingest { pick, device, day } => {
                if !self.model.payloads.is_empty() {
                    let data = pick.get(&self.model.payloads).clone();
                    self.ingest(data, *device, *day);
                }
            }
            Op::Read { pick, offset, len } => {
                let ids: Vec<u64> = self.model.segments.keys().copied().collect();
                if ids.is_empty() {
                    return;
                }
                let id = *pick.get(&ids);
                let data = &self.model.segments[&id];
                let off = *offset as usize % (data.len() + 1);
                let end = (off + *len as usize).min(data.len());
                let got = self
                    .store()
                    .read_range(id, off as u64, u64::from(*len))
                    .unwrap();
                assert!(got == data[off..end], "segment {id} range {off}+{len}");
            }
            Op::Reopen => {
                self.store.take().unwrap().close().unwrap();
                let dir = self.dir.clone();
                self.reopen_at(&dir);
            }
            Op::CrashReopen => {
                self.generation += 1;
                let copy = self.base.path().join(format!("store-{}", self.generation));
                copy_dir(&self.dir, &copy);
                drop(self.store.take());
                std::fs::remove_dir_all(&self.dir).unwrap();
                self.dir = copy.clone();
                self.reopen_at(&copy);
            }
            Op::Checkpoint => {
                self.store().checkpoint().unwrap();
            }
        }
        assert_eq!(
            self.store().len(),
            self.model.segments.len(),
            "after {op:?}"
        );
    }

    /// Every acknowledged segment reads back exactly and is found again by its dedup key.
    fn check_all(&self) {
        let store = self.store();
        let ids: Vec<u64> = self.model.segments.keys().copied().collect();
        assert_eq!(store.segment_ids(), ids);
        for (id, data) in &self.model.segments {
            let got = store.read_range(*id, 0, u64::MAX).unwrap();
            assert!(got == *data, "segment {id} differs");
        }
        for ((device, sha), id) in &self.model.dedup {
            assert_eq!(store.find_duplicate(device, sha).unwrap(), Some(*id));
        }
        // The index agrees: tracks, and what each camera recorded.
        for (id, (_, gps)) in &self.model.meta {
            assert_eq!(&store.track(*id).unwrap(), gps, "track of {id}");
        }
        for d in 0..DEVICES {
            let device = format!("AX-{d}");
            let mut found: Vec<u64> = store
                .find_all(&footage::Query::new().device(&device))
                .map(|r| r.unwrap().id)
                .collect();
            found.sort_unstable();
            let want: Vec<u64> = self
                .model
                .meta
                .iter()
                .filter(|(_, (dev, _))| *dev == device)
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(found, want, "find --device {device}");
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 32,
        rng_seed: RngSeed::Fixed(0x5EED_F007_A6E5),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    })]

    #[test]
    fn the_store_behaves_like_a_map_from_ids_to_bytes(ops in prop::collection::vec(op(), 1..32)) {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op);
        }
        h.check_all();
        let report = h.store().verify(None, |_| {}).unwrap();
        prop_assert!(report.is_clean(), "verify: {:#?}", report.problems());
        prop_assert_eq!(report.checked, h.model.segments.len());
        h.apply(&Op::CrashReopen);
        h.apply(&Op::Reopen);
    }
}
