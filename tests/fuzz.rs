//! Stable-Rust fuzzing of every decoder and parser (`footage::fuzz`): each target runs over
//! its seed corpus in `tests/fuzz/corpus/<target>/` and then over deterministic mutations of
//! those seeds (bit flips, bytes set to 0 / 0xff / random, truncation, duplication, splicing
//! two seeds, length-field tweaks) drawn from a seeded RNG.
//!
//! Budget: about 15 s of mutations in all by default. Longer runs:
//! `FOOTAGE_FUZZ_SECS=600 cargo test --release --test fuzz -- --nocapture` (seconds in all)
//! or `FOOTAGE_FUZZ_ITERS=100000` (mutations per target, no time limit; exactly repeatable).
//! `FOOTAGE_FUZZ_SEED` changes the RNG seed; `FOOTAGE_FUZZ_ONLY=name,name` picks targets.
//!
//! A panic is caught, the input saved to `target/fuzz-crashes/<target>-<hash>.bin` (replay it
//! with `FOOTAGE_FUZZ_REPLAY=<file> FOOTAGE_FUZZ_ONLY=<target>`), and the test fails naming
//! the target. Seeds are regenerated from the real encoders (and a real small store) with
//! `FOOTAGE_FUZZ_WRITE_SEEDS=1 cargo test --test fuzz write_seed_corpus`.

#[path = "fuzz/seeds.rs"]
mod fuzz_seeds;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SECS: f64 = 15.0;
/// Inputs longer than this are not grown further by mutation.
const MAX_INPUT: usize = 1 << 20;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes")
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// One mutation of `seeds[i]`, possibly spliced with another seed.
fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seeds[rng.random_range(0..seeds.len())].clone();
    let rounds = 1 + rng.random_range(0..4u32).pow(2) / 3;
    for _ in 0..rounds {
        let len = d.len();
        match rng.random_range(0..10u32) {
            0 | 1 if len > 0 => {
                let i = rng.random_range(0..len);
                d[i] ^= 1 << rng.random_range(0..8);
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                d[i] = [0u8, 0xff, rng.random()][rng.random_range(0..3)];
            }
            3 if len > 0 => {
                // A run of bytes set to one value.
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=16).min(len - i);
                let v = [0u8, 0xff, rng.random()][rng.random_range(0..3)];
                d[i..i + n].fill(v);
            }
            4 => {
                let n = rng.random_range(0..=len);
                d.truncate(n);
            }
            5 if len > 0 && len < MAX_INPUT => {
                // Duplicate a slice in place.
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 256));
                let piece = d[a..b].to_vec();
                let at = rng.random_range(0..=len);
                d.splice(at..at, piece);
            }
            6 if len < MAX_INPUT => {
                // Splice: a prefix of this input, then a suffix of another seed.
                let other = &seeds[rng.random_range(0..seeds.len())];
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            7 if len >= 4 => {
                // A length or count field: a little-endian u16/u32/u64 nudged or set to an
                // extreme.
                let width = [2usize, 4, 8][rng.random_range(0..3)].min(len);
                let i = rng.random_range(0..=len - width);
                let mut buf = [0u8; 8];
                buf[..width].copy_from_slice(&d[i..i + width]);
                let v = u64::from_le_bytes(buf);
                let v = match rng.random_range(0..6u32) {
                    0 => v.wrapping_add(1),
                    1 => v.wrapping_sub(1),
                    2 => v.wrapping_add(rng.random_range(2..4096)),
                    3 => 0,
                    4 => u64::MAX,
                    _ => v.wrapping_mul(2),
                };
                d[i..i + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
            8 if len > 0 => {
                // Remove a slice.
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                d.drain(a..b);
            }
            _ if len < MAX_INPUT => {
                // Insert interesting bytes.
                let at = rng.random_range(0..=len);
                let ins: &[u8] = match rng.random_range(0..6u32) {
                    0 => b"\xff\xff\xff\xff",
                    1 => b"\0\0\0\0",
                    2 => "\u{00e9}".as_bytes(),
                    3 => b"\n",
                    4 => b"-",
                    _ => b"9999999999999999999",
                };
                d.splice(at..at, ins.iter().copied());
            }
            _ => {}
        }
    }
    d
}

/// Why the last caught panic happened (set by the panic hook).
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

struct Outcome {
    execs: u64,
    crashes: Vec<(PathBuf, String)>,
}

fn run_one(name: &str, target: footage::fuzz::Target, input: &[u8], out: &mut Outcome) {
    out.execs += 1;
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let why = LAST_PANIC.lock().map(|s| s.clone()).unwrap_or_default();
        let dir = crash_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:016x}.bin", fnv(input)));
        let _ = std::fs::write(&path, input);
        if out.crashes.len() < 5 {
            eprintln!(
                "fuzz target {name} panicked: {why}; input saved to {}",
                path.display()
            );
        }
        out.crashes.push((path, why));
    }
}

#[test]
fn fuzz_every_target() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut s) = LAST_PANIC.lock() {
            *s = info.to_string();
        }
    }));
    let only: Option<Vec<String>> = std::env::var("FOOTAGE_FUZZ_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let targets: Vec<(&str, footage::fuzz::Target)> = footage::fuzz::TARGETS
        .iter()
        .copied()
        .filter(|(n, _)| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect();
    if let Ok(file) = std::env::var("FOOTAGE_FUZZ_REPLAY") {
        let input = std::fs::read(&file).expect("FOOTAGE_FUZZ_REPLAY names a readable file");
        let _ = std::panic::take_hook();
        for (_, t) in &targets {
            t(&input);
        }
        return;
    }
    let iters: Option<u64> = env_num("FOOTAGE_FUZZ_ITERS");
    let secs: f64 = env_num("FOOTAGE_FUZZ_SECS").unwrap_or(DEFAULT_SECS);
    let seed: u64 = env_num("FOOTAGE_FUZZ_SEED").unwrap_or(0x5eed_f007);
    let per_target = Duration::from_secs_f64(secs / targets.len().max(1) as f64);
    let mut report = BTreeMap::new();
    let mut failed = Vec::new();
    let mut total = 0u64;
    for (name, target) in &targets {
        let seeds = load_corpus(name);
        assert!(
            !seeds.is_empty(),
            "no seed corpus for fuzz target {name} in {}",
            corpus_dir(name).display()
        );
        let mut out = Outcome {
            execs: 0,
            crashes: Vec::new(),
        };
        for s in &seeds {
            run_one(name, *target, s, &mut out);
        }
        let mut rng = StdRng::seed_from_u64(seed ^ fnv(name.as_bytes()));
        let started = Instant::now();
        let mut n = 0u64;
        loop {
            match iters {
                Some(max) if n >= max => break,
                // The clock is read every 64 inputs; at least 256 mutations always run.
                None if n >= 256 && n.is_multiple_of(64) && started.elapsed() >= per_target => {
                    break
                }
                _ => {}
            }
            let input = mutate(&mut rng, &seeds);
            run_one(name, *target, &input, &mut out);
            n += 1;
        }
        total += out.execs;
        println!(
            "fuzz {name:16} {:>9} executions ({} seeds) {:>7.2} s  {} panics",
            out.execs,
            seeds.len(),
            started.elapsed().as_secs_f64(),
            out.crashes.len()
        );
        if !out.crashes.is_empty() {
            failed.push(format!(
                "{name}: {} panics, first: {} ({})",
                out.crashes.len(),
                out.crashes[0].1,
                out.crashes[0].0.display()
            ));
        }
        report.insert(*name, out.execs);
    }
    let _ = std::panic::take_hook();
    println!(
        "fuzz total {total} executions over {} targets",
        report.len()
    );
    assert!(
        failed.is_empty(),
        "fuzz targets panicked:\n{}",
        failed.join("\n")
    );
}

/// Every target has a seed corpus, and every seed is accepted by its target's decoder where
/// the seed is a valid input (so the corpora exercise the success paths, not only errors).
#[test]
fn every_target_has_seeds() {
    for (name, _) in footage::fuzz::TARGETS {
        assert!(!load_corpus(name).is_empty(), "no corpus for {name}");
    }
}

/// Regenerates the seed corpora from the real encoders and a real small store (only with
/// FOOTAGE_FUZZ_WRITE_SEEDS=1; regression seeds already in the corpus are kept).
#[test]
fn write_seed_corpus() {
    if std::env::var("FOOTAGE_FUZZ_WRITE_SEEDS").is_err() {
        println!("skipped: set FOOTAGE_FUZZ_WRITE_SEEDS=1 to regenerate tests/fuzz/corpus");
        return;
    }
    for (target, name, bytes) in fuzz_seeds::all() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
