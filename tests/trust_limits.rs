//! Issue 10, items 5, 7 and 16: bounded work and memory.
//!
//! - item 5: a search answer is bounded however the tracks zig-zag across the area's edge
//!   (hit intervals merged across short gaps, capped per segment, pages capped);
//! - item 7: a label change costs space in proportion to the change, obeys the ingest limits,
//!   and nothing is silently cut;
//! - item 16: reading a manifest's or a GPX file's track costs memory in proportion to the
//!   input, and stops at the fix limit.

mod common;

use common::{meta, T0};
use footage::{GpsFix, Query, SegmentMeta, Store};

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
        ids.push(store.ingest_bytes(m, format!("footage {k}").as_bytes()).unwrap().id);
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
    assert_eq!(
        page.results.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids
    );
    let bytes = serde_json::to_vec(
        &page
            .results
            .iter()
            .map(|r| &r.hits)
            .collect::<Vec<_>>(),
    )
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
        assert_eq!(r.hits, vec![footage::Hit { from_us: first, to_us: last }]);
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
    assert_eq!(slow.hits_omitted, visits - footage::MAX_HITS_PER_SEGMENT as u64);
    // Without merging, every run is its own interval, still capped and counted.
    let exact = store.find(&bbox_query().hit_gap(0)).unwrap();
    assert_eq!(exact.results[0].hits.len(), footage::MAX_HITS_PER_SEGMENT);
    assert_eq!(
        exact.results[0].hits_omitted,
        (FIXES / 2) as u64 - footage::MAX_HITS_PER_SEGMENT as u64
    );
    // A page larger than the cap is refused, not served.
    let e = store.find(&bbox_query().limit(footage::MAX_PAGE + 1)).unwrap_err();
    assert!(e.to_string().contains("--limit"), "{e}");

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
    assert_eq!(segs[2]["hits"].as_array().unwrap().len(), footage::MAX_HITS_PER_SEGMENT);
    assert_eq!(segs[2]["hits_omitted"], visits - footage::MAX_HITS_PER_SEGMENT as u64);
    // Each hit gap is a per-query choice; a page past the cap is a 400.
    let resp = ureq::get(&format!("{url}&hit_gap=0&limit=1")).call().unwrap();
    let body = resp.into_body().with_config().limit(256 << 20).read_to_vec().unwrap();
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
        ids.push(store.ingest_bytes(m, format!("footage {k}").as_bytes()).unwrap().id);
    }
    let first = store.find(&bbox_query()).unwrap();
    let listed: usize = first.results.iter().map(|r| r.hits.len()).sum();
    assert_eq!(first.results[0].hits.len(), 100);
    assert!(listed <= footage::MAX_PAGE_HITS, "{listed} intervals in one page");
    assert_eq!(first.results.len(), footage::MAX_PAGE_HITS / 100);
    assert!(first.next.is_some());
    let all: Vec<u64> = store
        .find_all(&bbox_query())
        .map(|r| r.unwrap().id)
        .collect();
    assert_eq!(all, ids);
}
