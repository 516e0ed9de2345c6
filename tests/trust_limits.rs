//! Issue 10, items 5, 7 and 16: bounded work and memory.
//!
//! - item 5: a search answer is bounded however the tracks zig-zag across the area's edge
//!   (hit intervals merged across short gaps, capped per segment, pages capped);
//! - item 7: a label change costs space in proportion to the change, obeys the ingest limits,
//!   and nothing is silently cut;
//! - item 16: reading a manifest's or a GPX file's track costs memory in proportion to the
//!   input, and stops at the fix limit.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{meta, T0};
use footage::{GpsFix, Query, SegmentMeta, Store};

// ---------------------------------------------------------------------------------------
// A counting allocator: bytes live on this thread now, and the most since `reset_peak`.
// Per thread, so tests running in parallel do not disturb one another's measurements.
// ---------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the old block and the new one both alive for a moment: the worst
            // case of a realloc that has to move.
            note(new_size as isize);
            note(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the most bytes this thread had allocated at once
/// while it ran, above what was live when it began.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

// ---------------------------------------------------------------------------------------
// Item 5: unbounded search answers
// ---------------------------------------------------------------------------------------

/// Fixes per legal, full-length track: 24 h at 4 Hz.
const FIXES: i64 = 345_600;
const STEP_US: i64 = 250_000;
/// The box the tracks zig-zag across (its east edge is at -0.12).
const BOX: (f64, f64, f64, f64) = (51.50, -0.13, 51.51, -0.12);

/// A 24 h track that is inside the box for `run` fixes, then outside for `run` fixes, and so
/// on (run = 1: every other fix crosses the edge).
fn zigzag(start: i64, run: i64) -> Vec<GpsFix> {
    (0..FIXES)
        .map(|i| {
            let inside = (i / run) % 2 == 0;
            let lon = if inside { -0.125 } else { -0.115 };
            GpsFix::from_degrees(start + i * STEP_US, 51.505, lon).unwrap()
        })
        .collect()
}

/// Three segments: two whose every other fix is outside the box, one that leaves it for 30 s
/// at a time (1,440 separate visits).
fn zigzag_store(dir: &std::path::Path) -> (Store, Vec<u64>) {
    let store = footage::testing::open_or_create_default(dir).unwrap();
    let mut ids = Vec::new();
    for (k, run) in [(0i64, 1i64), (1, 1), (2, 120)] {
        let start = T0 + k * 1_000_000;
        let m = SegmentMeta {
            gps: zigzag(start, run),
            end_us: start + FIXES * STEP_US,
            ..meta(&format!("MET-{k}"), "CAM-1", start)
        };
        ids.push(
            store
                .ingest_bytes(m, format!("footage {k}").as_bytes())
                .unwrap()
                .id,
        );
    }
    (store, ids)
}

fn bbox_query() -> Query {
    Query::new().bbox(BOX.0, BOX.1, BOX.2, BOX.3)
}

/// Most bytes a search answer over the three zig-zag segments may take (it took 31 MB).
const ANSWER_BOUND: usize = 64 * 1024;

#[test]
fn item05_zigzag_search_answer_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = zigzag_store(dir.path());

    // The library.
    let page = store.find(&bbox_query()).unwrap();
    assert_eq!(page.results.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    let bytes = serde_json::to_vec(&page.results.iter().map(|r| &r.hits).collect::<Vec<_>>())
        .unwrap()
        .len();
    assert!(
        bytes <= ANSWER_BOUND,
        "Store::find answered with {bytes} bytes of hit intervals"
    );

    // Exact apart from the documented merging: every other fix inside is one visit; 30 s
    // visits 30 s apart stay apart, the first MAX_HITS_PER_SEGMENT listed, the rest counted.
    for r in &page.results[..2] {
        let first = r.start_us;
        let last = r.start_us + (FIXES - 2) * STEP_US;
        assert_eq!(
            r.hits,
            vec![footage::Hit {
                from_us: first,
                to_us: last
            }]
        );
        assert_eq!(r.hits_omitted, 0);
    }
    let slow = &page.results[2];
    let visit = 120 * STEP_US;
    let want: Vec<footage::Hit> = (0..footage::MAX_HITS_PER_SEGMENT as i64)
        .map(|k| footage::Hit {
            from_us: slow.start_us + 2 * k * visit,
            to_us: slow.start_us + 2 * k * visit + visit - STEP_US,
        })
        .collect();
    assert_eq!(slow.hits, want);
    let visits = (FIXES / 120 + 1) as u64 / 2;
    assert_eq!(
        slow.hits_omitted,
        visits - footage::MAX_HITS_PER_SEGMENT as u64
    );
    // Without merging, every run is its own interval, still capped and counted.
    let exact = store.find(&bbox_query().hit_gap(0)).unwrap();
    assert_eq!(exact.results[0].hits.len(), footage::MAX_HITS_PER_SEGMENT);
    assert_eq!(
        exact.results[0].hits_omitted,
        (FIXES / 2) as u64 - footage::MAX_HITS_PER_SEGMENT as u64
    );
    // A page larger than the cap is refused, not served.
    let e = store
        .find(&bbox_query().limit(footage::MAX_PAGE + 1))
        .unwrap_err();
    assert!(e.to_string().contains("page size (limit)"), "{e}");

    // The server.
    let server = footage::server::spawn(
        store.clone(),
        footage::server::ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            local_actor: "tester".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let url = format!(
        "{}/api/segments?bbox={},{},{},{}",
        server.url(),
        BOX.0,
        BOX.1,
        BOX.2,
        BOX.3
    );
    let resp = ureq::get(&url).call().unwrap();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap();
    assert!(
        body.len() <= ANSWER_BOUND,
        "the server answered with {} bytes",
        body.len()
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 3);
    assert_eq!(
        segs[2]["hits"].as_array().unwrap().len(),
        footage::MAX_HITS_PER_SEGMENT
    );
    assert_eq!(
        segs[2]["hits_omitted"],
        visits - footage::MAX_HITS_PER_SEGMENT as u64
    );
    // Each hit gap is a per-query choice; a page past the cap is a 400.
    let resp = ureq::get(&format!("{url}&hit_gap=0&limit=1"))
        .call()
        .unwrap();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["segments"][0]["hits_omitted"],
        (FIXES / 2) as u64 - footage::MAX_HITS_PER_SEGMENT as u64
    );
    assert!(v["next"].is_string());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(&format!("{url}&limit=5000")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

/// A page whose results carry many hit intervals ends early (with `next`), and paging
/// through yields every result once.
#[test]
fn item05_page_of_many_hits_ends_early_and_pages_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_default(dir.path()).unwrap();
    // 120 segments of 100 separate 1-fix visits each: 12,000 intervals in all.
    let mut ids = Vec::new();
    for k in 0..120i64 {
        let start = T0 + k * 10_000_000_000;
        let gps = (0..200)
            .map(|i| {
                let lon = if i % 2 == 0 { -0.125 } else { -0.115 };
                GpsFix::from_degrees(start + i * 20_000_000, 51.505, lon).unwrap()
            })
            .collect();
        let m = SegmentMeta {
            gps,
            end_us: start + 200 * 20_000_000,
            ..meta("MET-1", "CAM-1", start)
        };
        ids.push(
            store
                .ingest_bytes(m, format!("footage {k}").as_bytes())
                .unwrap()
                .id,
        );
    }
    let first = store.find(&bbox_query()).unwrap();
    let listed: usize = first.results.iter().map(|r| r.hits.len()).sum();
    assert_eq!(first.results[0].hits.len(), 100);
    assert!(
        listed <= footage::MAX_PAGE_HITS,
        "{listed} intervals in one page"
    );
    assert_eq!(first.results.len(), footage::MAX_PAGE_HITS / 100);
    assert!(first.next.is_some());
    let all: Vec<u64> = store
        .find_all(&bbox_query())
        .map(|r| r.unwrap().id)
        .collect();
    assert_eq!(all, ids);
}

// ---------------------------------------------------------------------------------------
// Item 16: memory from input files
// ---------------------------------------------------------------------------------------

/// Peak memory allowed while reading a track, as a multiple of the input file's size: the
/// file's text (read whole, 1x), the fixes (16 bytes each, under 1x of their text) and a
/// vector's growth.
const INPUT_MEMORY_FACTOR: usize = 4;

/// Fixes in the memory tests: close to the limit, so the files are ~10 MB.
const INPUT_FIXES: usize = 300_000;

fn manifest_line(points: usize) -> String {
    let mut gps = String::with_capacity(points * 34);
    for i in 0..points {
        if i > 0 {
            gps.push(',');
        }
        let t = 1_763_647_380 + i / 4;
        let frac = (i % 4) * 25;
        gps.push_str(&format!(
            "[{t}.{frac:02}, 51.{:06}, -0.{:06}]",
            i % 1_000_000,
            (i * 7) % 1_000_000
        ));
    }
    format!(
        r#"{{"file": "a.mp4", "officer": "PC1", "device": "CAM-1", "start": "2025-11-20T14:03:00Z", "gps": [{gps}]}}"#
    )
}

#[test]
fn item16_manifest_gps_memory_is_bounded_by_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.jsonl");
    std::fs::write(&path, manifest_line(INPUT_FIXES) + "\n").unwrap();
    let input = std::fs::metadata(&path).unwrap().len() as usize;
    let (entries, peak) = peak_of(|| footage::input::manifest::read_manifest(&path));
    let entries = entries.unwrap();
    assert_eq!(entries[0].gps.len(), INPUT_FIXES);
    eprintln!("manifest: {input} bytes read with a peak of {peak} bytes");
    assert!(
        peak <= INPUT_MEMORY_FACTOR * input,
        "reading a {input}-byte manifest took {peak} bytes at peak ({:.1}x)",
        peak as f64 / input as f64
    );
}

fn gpx_doc(points: usize) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"t\" \
         xmlns=\"http://www.topografix.com/GPX/1/1\"><trk><trkseg>\n",
    );
    for i in 0..points {
        let s = i % 60;
        let m = (i / 60) % 60;
        let h = i / 3600;
        doc.push_str(&format!(
            "<trkpt lat=\"51.{:06}\" lon=\"-0.{:06}\"><time>2025-11-{:02}T{:02}:{m:02}:{s:02}Z</time></trkpt>\n",
            i % 1_000_000,
            (i * 7) % 1_000_000,
            20 + h / 24,
            h % 24
        ));
    }
    doc.push_str("</trkseg></trk></gpx>\n");
    doc
}

#[test]
fn item16_gpx_memory_is_bounded_by_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gpx");
    std::fs::write(&path, gpx_doc(INPUT_FIXES)).unwrap();
    let input = std::fs::metadata(&path).unwrap().len() as usize;
    let (fixes, peak) = peak_of(|| footage::input::gps::parse_gps_file(&path));
    assert_eq!(fixes.unwrap().len(), INPUT_FIXES);
    eprintln!("GPX: {input} bytes read with a peak of {peak} bytes");
    assert!(
        peak <= INPUT_MEMORY_FACTOR * input,
        "reading a {input}-byte GPX file took {peak} bytes at peak ({:.1}x)",
        peak as f64 / input as f64
    );
}

#[test]
fn item16_tracks_past_the_fix_limit_are_refused_while_read() {
    let over = footage::meta::MAX_GPS_FIXES + 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.jsonl");
    std::fs::write(&path, manifest_line(over) + "\n").unwrap();
    let e = match footage::input::manifest::read_manifest(&path) {
        Ok(_) => panic!("a manifest track past the fix limit is read"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("batch.jsonl line 1") && e.contains("limit is 345600"),
        "{e}"
    );
    let path = dir.path().join("t.gpx");
    std::fs::write(&path, gpx_doc(over)).unwrap();
    let e = match footage::input::gps::parse_gps_file(&path) {
        Ok(_) => panic!("a GPX track past the fix limit is read"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("t.gpx") && e.contains("limit is 345600"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Item 7: growth from label changes
// ---------------------------------------------------------------------------------------

/// Bytes of every volume file of the store.
fn volume_bytes(dir: &std::path::Path) -> u64 {
    common::volume_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// The longest tag allowed: 64 bytes.
fn long_tag(k: usize) -> String {
    format!("{k:04}-{}", "x".repeat(footage::meta::MAX_ID_LEN - 5))
}

/// Bytes one tag change may take in the log at most: one 4 KiB block, since every record's
/// payload starts on a block boundary (FORMAT.md §5) and a delta record (header, fixed fields,
/// actor, a 64-byte tag) fits in one. A full-state record of 250 such tags takes 5 blocks.
const TAG_CHANGE_BOUND: u64 = 4096;

/// Removes the checkpoints, so the next open rebuilds every state from the log alone.
fn drop_checkpoints(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir.join("catalog")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ckpt") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn item07_tag_changes_cost_space_in_proportion_to_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_default(dir.path()).unwrap();
    let ids: Vec<u64> = (0..6)
        .map(|k| {
            let m = meta("MET-1", "CAM-1", T0 + k * 100_000_000);
            store
                .ingest_bytes(m, format!("clip {k}").as_bytes())
                .unwrap()
                .id
        })
        .collect();
    let before = volume_bytes(dir.path());
    // 1,500 tag additions of the longest tags: 250 on each of 6 segments.
    for &id in &ids {
        for k in 0..250 {
            store
                .change(id, &footage::Change::Tag(long_tag(k)), "tester")
                .unwrap();
        }
    }
    let grown = volume_bytes(dir.path()) - before;
    assert!(
        grown <= 1_500 * TAG_CHANGE_BOUND + 4096,
        "1,500 tag additions grew the volumes by {grown} bytes ({} per change)",
        grown / 1_500
    );
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..250).map(long_tag).collect();
        v.push("test".into());
        v.sort();
        v
    };
    assert_eq!(store.info(ids[5]).unwrap().tags, want);
    // The log alone (no checkpoint) rebuilds every list.
    drop(store);
    drop_checkpoints(dir.path());
    let store = Store::open(dir.path()).unwrap();
    for &id in &ids {
        assert_eq!(store.info(id).unwrap().tags, want, "segment {id}");
    }
    assert!(
        store.open_report().damage.is_empty(),
        "{:?}",
        store.open_report()
    );
    let report = store.verify(None, |_| {}).unwrap();
    assert!(!report.has_findings(), "{report:?}");
}

#[test]
fn item07_changes_past_the_label_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_default(dir.path()).unwrap();
    let max = footage::meta::MAX_LABELS;
    let m = SegmentMeta {
        tags: (0..max).map(long_tag).collect(),
        ..meta("MET-1", "CAM-1", T0)
    };
    let id = store.ingest_bytes(m, b"clip").unwrap().id;
    let e = store
        .change(id, &footage::Change::Tag(long_tag(max)), "tester")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "{e}");
    let long = "y".repeat(footage::meta::MAX_ID_LEN + 1);
    let e = store
        .change(id, &footage::Change::Categorize(long), "tester")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit is 64"), "{e}");
    // Nothing was cut: the list is as it was, and one out makes room for one in.
    assert_eq!(store.info(id).unwrap().tags.len(), max);
    store
        .change(id, &footage::Change::Untag(long_tag(0)), "tester")
        .unwrap();
    store
        .change(id, &footage::Change::Tag(long_tag(max)), "tester")
        .unwrap();
    drop(store);
    drop_checkpoints(dir.path());
    let store = Store::open(dir.path()).unwrap();
    let tags = store.info(id).unwrap().tags;
    assert_eq!(tags.len(), max);
    assert!(tags.contains(&long_tag(max)) && !tags.contains(&long_tag(0)));
}

#[test]
fn item07_version_1_change_records_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_default(dir.path()).unwrap();
    let id = store
        .ingest_bytes(meta("MET-1", "CAM-1", T0), b"clip")
        .unwrap()
        .id;
    // A record as older builds wrote it, then new ones (deltas on top of it).
    footage::testing::append_v1_tag(&store, id, "old-a").unwrap();
    store
        .change(id, &footage::Change::Tag("new-b".into()), "tester")
        .unwrap();
    store.hold(id, "CASE-1", "tester").unwrap();
    drop(store);
    drop_checkpoints(dir.path());
    let store = Store::open(dir.path()).unwrap();
    let info = store.info(id).unwrap();
    assert_eq!(info.tags, ["new-b", "old-a", "test"]);
    assert_eq!(info.cases, ["CASE-1"]);
    assert!(
        store.open_report().damage.is_empty(),
        "{:?}",
        store.open_report()
    );
    let report = store.verify(None, |_| {}).unwrap();
    assert!(!report.has_findings(), "{report:?}");
}
