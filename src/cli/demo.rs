//! `footage demo`: builds a realistic station store in a directory of its own and tours the
//! engine: concurrent ingest with group commit, idempotent re-docking, queries of each kind
//! with timings, read-back and verification.
//!
//! Invariant: the demo only ever deletes a directory it made itself (one holding
//! `store/footage.toml` and nothing unexpected), never a directory the user owns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use parking_lot::Mutex;
use sha2::Digest;

use super::demo_data::{self, STATIONS};
use super::progress_bar;
use crate::index::query::Query;
use crate::input::time::format_time;
use crate::Store;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo store and its generated clips (replaced if it holds a demo)
    #[arg(long, default_value = "./footage-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Officers on shift during the demo day
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub officers: u16,
    /// Use synthetic bytes even when ffmpeg is installed
    #[arg(long)]
    pub no_ffmpeg: bool,
}

const DAY_US: i64 = 86_400_000_000;

/// Empties `dir` if it is a previous demo; refuses anything else that is not empty.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let known = ["store", "clips", "tmp", "cloud"];
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned());
        let is_demo = dir.join("store").join(crate::CONFIG_FILE).exists();
        if !is_demo && entries.next().is_some() {
            anyhow::bail!(
                "{} exists and is not a footage demo; choose another --dir",
                dir.display()
            );
        }
        if is_demo {
            if let Some(other) = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| !known.contains(&n.as_str()))
            {
                anyhow::bail!(
                    "{} holds {other:?}, which the demo did not make; choose another --dir",
                    dir.display()
                );
            }
            for k in known {
                let p = dir.join(k);
                if p.exists() {
                    std::fs::remove_dir_all(&p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
        }
    }
    crate::fsio::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let dir = args.dir.clone();
    prepare(&dir)?;
    let store_dir = dir.join("store");
    let today = crate::util::now_us().div_euclid(DAY_US) * DAY_US;
    let day = today - DAY_US;
    let plan = demo_data::plan(day, usize::from(args.officers), 2026);
    println!(
        "footage demo: a day of body-worn video at {} London stations",
        STATIONS.len()
    );
    println!("  store: {}", store_dir.display());
    println!(
        "  {} officers, {} segments recorded on {}",
        args.officers,
        plan.len(),
        &format_time(day)[..10]
    );

    let clips = make_demo_clips(&args, &dir)?;
    let (store, tmp, results) = dock(&store_dir, &dir, &plan, clips.as_deref())?;
    redock(&store, &plan, clips.as_deref(), &tmp, &results)?;
    queries(&store, &store_dir, &plan, day)?;
    verify_and_index(&store, &plan, &results)?;
    retention(&store, &dir, &store_dir, &plan, &results, day)?;
    store.close()?;
    let (clat, clon) = (STATIONS[0].1, STATIONS[0].2);
    let _ = std::fs::remove_dir_all(&tmp);
    println!("\nTry it yourself:");
    println!("   export FOOTAGE_STORE={}", store_dir.display());
    println!("   footage stats");
    println!("   footage find --near {clat},{clon} --radius 150");
    println!("   footage get 1 --out segment-1.mp4");
    println!("   footage retention plan --days 30");
    println!("\nOpen the review page:");
    println!(
        "   footage serve --store {}   (then browse http://127.0.0.1:8080/)",
        store_dir.display()
    );
    Ok(super::EXIT_OK)
}

/// Real H.264 clips made with ffmpeg, if it is installed and not refused.
fn make_demo_clips(args: &DemoArgs, dir: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    Ok(if !args.no_ffmpeg && demo_data::have_ffmpeg() {
        let t = Instant::now();
        let clips = demo_data::make_clips(&dir.join("clips"))?;
        println!(
            "  made {} H.264 clips with ffmpeg in {:.1} s",
            clips.len(),
            t.elapsed().as_secs_f64()
        );
        Some(clips)
    } else {
        println!("  ffmpeg not used: segments are synthetic bytes (install ffmpeg for real MP4)");
        None
    })
}

/// Each docked segment: its place in the plan and its commit.
type Docked = Vec<(usize, crate::Committed)>;

/// Step 1: a new store (simulated clock) and the day's segments docked four at a time.
fn dock(
    store_dir: &Path,
    dir: &Path,
    plan: &[demo_data::PlannedSegment],
    clips: Option<&[PathBuf]>,
) -> anyhow::Result<(Store, PathBuf, Docked)> {
    // 1. Docking: four cameras at a time, sharing fsyncs.
    println!("\n1. Docking cameras: ingest with 4 concurrent streams (group commit)");
    // Retention below runs 32 days ahead: only a simulated-clock store accepts that.
    let store = Store::create_with(
        store_dir,
        &crate::StoreOptions {
            simulated_clock: true,
            ..crate::StoreOptions::default()
        },
    )?;
    let tmp = dir.join("tmp");
    crate::fsio::create_dir_all(&tmp)?;
    let pb = progress_bar(plan.len() as u64, "ingesting");
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:12} [{bar:40}] {pos}/{len} segments {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, crate::Committed)>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let t = Instant::now();
    let total_bytes = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = plan.get(n) else { break };
                let done = demo_data::segment_bytes(clips, p, n, &tmp).and_then(|bytes| {
                    total_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                    Ok(store.ingest_bytes(p.meta.clone(), &bytes)?)
                });
                match done {
                    Ok(c) => results.lock().push((n, c)),
                    Err(e) => {
                        errors.lock().push(e);
                        break;
                    }
                }
                pb.inc(1);
            });
        }
    });
    pb.finish_and_clear();
    if let Some(e) = errors.into_inner().into_iter().next() {
        return Err(e.context("demo ingest failed"));
    }
    let mut results = results.into_inner();
    results.sort_by_key(|(n, _)| *n);
    let secs = t.elapsed().as_secs_f64();
    let bytes = total_bytes.load(Ordering::Relaxed) as u64;
    println!(
        "   {} segments, {:.1} MB in {:.1} s ({:.1} MB/s, every one fsynced before it was acknowledged)",
        results.len(),
        mb(bytes),
        secs,
        mb(bytes) / secs.max(1e-9)
    );
    Ok((store, tmp, results))
}

/// Step 2: a dock retries a segment; nothing is stored twice.
fn redock(
    store: &Store,
    plan: &[demo_data::PlannedSegment],
    clips: Option<&[PathBuf]>,
    tmp: &Path,
    results: &[(usize, crate::Committed)],
) -> anyhow::Result<()> {
    // 2. A dock retries after a dropped connection: nothing is stored twice.
    if let Some((n, first)) = results.first() {
        let p = &plan[*n];
        let again = demo_data::segment_bytes(clips, p, *n, tmp)?;
        let c = store.ingest_bytes(p.meta.clone(), &again)?;
        println!(
            "\n2. A dock retries segment {}: duplicate = {}, same id = {}",
            first.id,
            c.duplicate,
            c.id == first.id
        );
    }
    Ok(())
}

/// Step 3: questions a reviewer asks, with timings.
fn queries(
    store: &Store,
    store_dir: &Path,
    plan: &[demo_data::PlannedSegment],
    day: i64,
) -> anyhow::Result<()> {
    // 3. Questions a reviewer asks, with timings.
    println!("\n3. Queries (each run through the index; timings are this machine's)");
    let night = day + 3_600_000_000;
    let officer = plan
        .first()
        .map(|p| p.meta.officer.clone())
        .unwrap_or_default();
    let ofrom = plan.first().map_or(day, |p| p.meta.start_us);
    let (clat, clon) = (STATIONS[0].1, STATIONS[0].2);
    let queries: Vec<(String, String, Query)> = vec![
        (
            format!("officer {officer}, first 2 hours of the shift"),
            format!(
                "find --officer {officer} --from {} --to {}",
                format_time(ofrom),
                format_time(ofrom + 7_200_000_000)
            ),
            Query::new()
                .officer(officer.clone())
                .from(ofrom)
                .to(ofrom + 7_200_000_000),
        ),
        (
            "all footage between 01:00 and 03:00".into(),
            format!(
                "find --from {} --to {}",
                format_time(night),
                format_time(night + 7_200_000_000)
            ),
            Query::new().from(night).to(night + 7_200_000_000),
        ),
        (
            format!(
                "who filmed within 150 m of {} between 01:00 and 03:00",
                STATIONS[0].0
            ),
            format!(
                "find --near {clat},{clon} --radius 150 --from {} --to {}",
                format_time(night),
                format_time(night + 7_200_000_000)
            ),
            Query::new()
                .near(clat, clon, 150.0)
                .from(night)
                .to(night + 7_200_000_000),
        ),
        (
            "everything inside a box around Trafalgar Square, all day".into(),
            "find --bbox 51.5068,-0.1300,51.5090,-0.1260".into(),
            Query::new().bbox(51.5068, -0.1300, 51.5090, -0.1260),
        ),
        (
            "stop-and-search footage that day".into(),
            format!(
                "find --tag stop-and-search --from {} --to {}",
                format_time(day),
                format_time(day + DAY_US)
            ),
            Query::new()
                .tag("stop-and-search")
                .from(day)
                .to(day + DAY_US),
        ),
    ];
    for (title, cli, q) in &queries {
        let t = Instant::now();
        let page = store.find(q)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        println!(
            "   - {title}: {} segments in {us:.0} µs (index: {})",
            page.results.len(),
            page.plan
        );
        println!("     footage --store {} {cli}", store_dir.display());
        for r in page.results.iter().take(3) {
            let info = store.info(r.id)?;
            let hits: Vec<String> = r
                .hits
                .iter()
                .map(|h| {
                    format!(
                        "{}..{}",
                        &format_time(h.from_us)[11..19],
                        &format_time(h.to_us)[11..19]
                    )
                })
                .collect();
            println!(
                "       #{:<5} {} {} {}{}",
                r.id,
                info.officer,
                &info.start.to_string()[..19],
                info.categories.join(","),
                if hits.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", hits.join(" "))
                }
            );
        }
    }
    Ok(())
}

/// Steps 4 and 5: everything verified, one segment read back, the index's size.
fn verify_and_index(
    store: &Store,
    plan: &[demo_data::PlannedSegment],
    results: &[(usize, crate::Committed)],
) -> anyhow::Result<()> {
    // 4. Chain of custody: read back and check every SHA-256.
    println!("\n4. Verify: every chunk CRC and every segment's SHA-256 re-checked");
    let total = store.stats()?.bytes;
    let pb = progress_bar(total, "verifying");
    let t = Instant::now();
    let report = store.verify(None, |n| pb.inc(n))?;
    pb.finish_and_clear();
    println!(
        "   {} segments, {:.1} MB verified in {:.2} s: {}",
        report.checked,
        mb(report.bytes),
        t.elapsed().as_secs_f64(),
        if report.corrupt.is_empty() {
            "all intact".to_string()
        } else {
            format!("CORRUPT: {:?}", report.corrupt)
        }
    );
    if let Some((_, c)) = results.first() {
        let part = store.read_range(c.id, 0, 16)?;
        let kind = if part.get(4..8) == Some(b"ftyp") {
            "an MP4 (ftyp box)"
        } else {
            "synthetic bytes"
        };
        println!(
            "   segment {} starts with {kind}; SHA-256 {}",
            c.id,
            c.sha256_hex()
        );
    }

    let stats = store.index_stats();
    let fixes: usize = plan.iter().map(|p| p.meta.gps.len()).sum();
    println!(
        "\n5. Index: {} segments, {} GPS fixes, {} postings; memory {:.0} B/segment (catalog) + {:.0} B/segment (index)",
        stats.segments,
        fixes,
        stats.postings,
        stats.catalog_heap_bytes as f64 / stats.segments.max(1) as f64,
        stats.index_heap_bytes as f64 / stats.segments.max(1) as f64,
    );
    Ok(())
}

/// Step 6: retention 32 days later, with a legal hold and a local directory as the cloud.
fn retention(
    store: &Store,
    dir: &Path,
    store_dir: &Path,
    plan: &[demo_data::PlannedSegment],
    results: &[(usize, crate::Committed)],
    day: i64,
) -> anyhow::Result<()> {
    // 6. Retention with a simulated clock: a legal hold, uploads to a local "cloud", eviction
    // and deletion.
    println!(
        "\n6. Retention, 32 days later (simulated clock); the cloud tier is a local directory"
    );
    let cloud = dir.join("cloud");
    let policy_path = store_dir.join(crate::retention::policy::POLICY_FILE);
    let url = format!(
        "file://{}",
        std::fs::canonicalize(dir)?.join("cloud").display()
    );
    let policy =
        crate::retention::policy::DEFAULT_POLICY.replace("file:///var/lib/footage-cloud", &url);
    crate::log::write_atomic(&policy_path, policy.as_bytes())?;
    let held = results
        .iter()
        .map(|(_, c)| c.id)
        .find(|id| store.info(*id).is_ok_and(|i| i.categories.is_empty()));
    if let Some(id) = held {
        store.hold(id, "OP-DEMO-HOLD", "demo")?;
        println!("   legal hold on segment {id} (no category: it would be deleted after 31 days)");
    }
    let evidential = results.iter().map(|(_, c)| c.clone()).find(|c| {
        store
            .info(c.id)
            .is_ok_and(|i| i.categories.iter().any(|x| x == "evidential"))
    });
    let now = day + 32 * DAY_US;
    let upcoming = store.retention_plan(now - 2 * DAY_US, 3)?;
    println!(
        "   footage retention plan --days 3 (two days before): {} actions due, {} of them deletions",
        upcoming.len(),
        upcoming.iter().filter(|p| p.action == "delete").count()
    );
    let pb = progress_bar(plan.len() as u64, "retention");
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:20} [{bar:40}] {pos}/{len} segments")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t = Instant::now();
    let summary = store.retention_apply(now, false, "demo", &mut |p| {
        pb.set_length(p.total);
        pb.set_position(p.done);
        pb.set_message(format!("{} {}", p.action, p.id));
    })?;
    pb.finish_and_clear();
    println!(
        "   uploaded {}, evicted {}, deleted {}, held {}, {:.1} MB reclaimed in {:.1} s{}",
        summary.uploaded,
        summary.evicted,
        summary.deleted,
        summary.held,
        mb(summary.bytes_reclaimed),
        t.elapsed().as_secs_f64(),
        if summary.failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed", summary.failed.len())
        }
    );
    if let Some(id) = held {
        let info = store.info(id)?;
        println!(
            "   segment {id} survived: holds {:?}, tier {}",
            info.holds, info.tier
        );
    }
    if let Some(c) = evidential {
        let t = Instant::now();
        let mut r = store.open_segment(c.id)?;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut r, &mut hasher)?; // a SHA-256 hasher is an io::Write
        let same = crate::util::hex(&sha2::Digest::finalize(hasher)) == c.sha256_hex();
        println!(
            "   evidential segment {} now lives in {} (tier {}): read back through the cloud tier in {:.0} ms, SHA-256 {}",
            c.id,
            cloud.display(),
            store.info(c.id)?.tier,
            t.elapsed().as_secs_f64() * 1e3,
            if same { "matches" } else { "DOES NOT MATCH" }
        );
    }
    Ok(())
}
