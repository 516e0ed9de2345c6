//! Opening the footage store in a child process (this bench binary, re-executed with
//! `FOOTAGE_BENCH_INDEX_OPEN=<store dir>`), and the sizes of the fixtures on disk.
//!
//! The child opens the store once and prints one line: RSS before and after, wall-clock and CPU
//! time (user + system, which other processes on the cores barely change) of `Store::open`,
//! a breakdown (CPU time to read, decompress and decode the checkpoint, timed apart after the
//! open) and `index_stats()`. The parent reads it into an [`OpenRun`].

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use super::CHILD_ENV;
use crate::common;

pub fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let md = e.metadata().unwrap();
            total += if md.is_dir() {
                dir_bytes(&e.path())
            } else {
                md.len()
            };
        }
    }
    total
}

pub fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// CPU time (user + system) of this process so far: unlike wall-clock time, barely changed by
/// other processes competing for the 2 cores.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct passed; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Child mode: one open; prints RSS before/after, open time and the index sizes.
pub fn open_child(dir: &str) {
    let before = common::rss_bytes();
    let cpu = cpu_time();
    let t = Instant::now();
    let s = footage::testing::open_or_create_default(dir).expect("open");
    let d = t.elapsed();
    let cpu = cpu_time() - cpu;
    let after = common::rss_bytes();
    let st = s.index_stats();
    drop(s);
    // Where the time goes, measured apart in the same process: reading the checkpoint,
    // decompressing it, decoding it (which includes rebuilding the time/officer/device lists).
    let ckpt = std::fs::read_dir(Path::new(dir).join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .max()
        .unwrap();
    // CPU time, not wall clock: these run after the open, when other processes may hold the
    // cores.
    let t = cpu_time();
    let data = std::fs::read(&ckpt).unwrap();
    let read = cpu_time() - t;
    let t = cpu_time();
    let body = footage::decode_checkpoint_file(&data).unwrap();
    let unzip = cpu_time() - t;
    let t = cpu_time();
    black_box(footage::decode_checkpoint_body(&body).unwrap());
    let decode = cpu_time() - t;
    println!(
        "{before} {after} {} {} {} {} {} {} {} {} {} {}",
        d.as_nanos(),
        cpu.as_nanos(),
        read.as_nanos(),
        unzip.as_nanos(),
        decode.as_nanos(),
        st.segments,
        st.postings,
        st.catalog_heap_bytes,
        st.index_heap_bytes,
        st.track_file_bytes
    );
}

pub struct OpenRun {
    pub rss_delta: i64,
    pub time: Duration,
    pub cpu: Duration,
    pub parts: [Duration; 3],
    pub segments: usize,
    pub postings: usize,
    pub catalog_heap: usize,
    pub index_heap: usize,
    pub track_bytes: u64,
}

pub fn open_in_child(store: &Path) -> OpenRun {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    OpenRun {
        rss_delta: v[1] as i64 - v[0] as i64,
        time: Duration::from_nanos(v[2]),
        cpu: Duration::from_nanos(v[3]),
        parts: [
            Duration::from_nanos(v[4]),
            Duration::from_nanos(v[5]),
            Duration::from_nanos(v[6]),
        ],
        segments: v[7] as usize,
        postings: v[8] as usize,
        catalog_heap: v[9] as usize,
        index_heap: v[10] as usize,
        track_bytes: v[11],
    }
}

pub fn drop_caches() -> bool {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}
