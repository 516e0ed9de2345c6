//! The footage index against SQLite (issue 3), on the same synthetic catalogue in the same run.
//! This file is the catalogue (London) and its queries; the harness
//! (benches/common/index_harness/: fixtures, SQLite design, answer check, timing, open) is
//! shared with benches/index_force.rs (issue 15's second catalogue).
//!
//! Catalogue (deterministic, seeded): 1,500 officers (`MET-004217`-style ids) from 12 London
//! stations working 8-10 h early, late or night shifts, five days in seven, with cameras from
//! their station's pool; 8-20 segments a shift, 30 s to 40 min long (log-uniform); a GPS fix every
//! 5 s while recording, from walking (about 1.4 m/s, with stops) or driving (8-13 m/s, turns,
//! lights) tracks that wander from the station and are pulled back when too far; dropouts of
//! 1-6 minutes; 3 % of segments without GPS; categories, tags and case ids on some segments.
//! `FOOTAGE_BENCH_SEGMENTS` sets the number of segments (default 1,000,000; about 15,000 a day,
//! so 1,000,000 is about 67 days).
//!
//! Fixtures, built once per run (under `target/bench-tmp/`, removed at the end, or under
//! `FOOTAGE_BENCH_INDEX_DIR` in `n<segments>/` and kept, and reused by the next run with the same
//! count):
//! - footage: `footage::testing::synthesize_store` (the store's own catalog, checkpoint and
//!   track file encoders; no video), fed the segments sorted by start;
//! - SQLite (bundled, WAL, `synchronous=NORMAL`): `segments` with B-tree indexes on
//!   (officer, start, end), (device, start, end) and (start, end); `officers`, `devices`;
//!   `labels(kind, label, seg)` (WITHOUT ROWID); an `rtree_i32` R*Tree over track pieces (up to
//!   12 consecutive fixes, cut at gaps over 60 s: lat/lon box in 1e-7 degrees and whole-second
//!   time range) whose auxiliary columns hold the segment id and the piece's fixes (a packed
//!   blob: i64 base time, then u32 time offset, i32 lat, i32 lon per fix); indexes created after
//!   the bulk load, then `ANALYZE`. The exact test (`haversine_m`, box) runs in Rust on the
//!   pieces the R*Tree returns. Window queries use the longest segment duration (kept in `meta`)
//!   to bound the start range, as the footage index does.
//!
//! Queries: seven types, `FOOTAGE_BENCH_QUERIES` instances each (default 300), drawn (seeded)
//! around real segments and fixes so they have results. Before any timing, every instance runs
//! on both engines and the id lists (sorted by start, id) must be identical. footage's answer
//! is every page (`Store::find_all`: a page holds at most `MAX_PAGE` results), as SQLite
//! returns every row; both are timed that way. Then criterion
//! times each type (instances round-robin: the mean over the mix), and a hand-rolled pass times
//! every instance 3 times on each engine, interleaved, and reports p50 and p99 over the
//! instances of each one's best run (the least disturbed by other processes).
//!
//! Open: `Store::open` in a child process (this binary, re-executed with
//! `FOOTAGE_BENCH_INDEX_OPEN`), once after dropping the page cache (if
//! /proc/sys/vm/drop_caches is writable: root) and 5 times warm; wall-clock and
//! CPU time (user + system, which other processes on the cores barely change), RSS growth,
//! `index_stats()`, and a breakdown (CPU time to read, decompress and decode the checkpoint,
//! timed apart) come from the same child.
//!
//! Run: `cargo bench --bench index` (about 15 min at 1,000,000 segments on 2 cores);
//! `FOOTAGE_BENCH_SEGMENTS=100000 cargo bench --bench index` for a quick run;
//! `cargo bench --bench index -- --test` checks the answers and runs everything once.
//! `FOOTAGE_BENCH_PROFILE=<type>/<footage|sqlite>` (e.g. `c_near150m_2h/footage`) builds or
//! reuses the fixtures, then runs only that query type for 10 s, for `perf record`.

#[path = "common/mod.rs"]
mod common;
#[path = "common/index_harness/mod.rs"]
mod harness;

#[path = "common/london.rs"]
mod london;

use london::{make_queries, Catalogue, KINDS, OFFICERS, SEED};

fn main() {
    harness::run(&harness::Spec {
        name: "index",
        fixtures: "n",
        default_segments: 1_000_000,
        officers: OFFICERS,
        segments: |n| Box::new(Catalogue::new(n)),
        probe_seed: SEED ^ 0xC0FFEE,
        kinds: &KINDS,
        make_queries,
    });
}
