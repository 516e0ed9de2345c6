//! A retention run: a store with a policy (`policy.toml`: per category, upload to the cloud
//! tier, drop local bytes, delete), footage in two categories, a plan, one apply at a chosen
//! time, and a background run driven by an injected clock.
//!
//! Run: `cargo run --example retention` (everything in a new temporary directory; the "cloud"
//! is a `file://` directory there). Uses only the public API: [`Store`], [`StoreOptions`],
//! [`footage::Policy`], [`RetentionOptions`] with a [`footage::RetentionClock`].
//!
//! What it shows:
//! - decisions follow each segment's categories and end time: `evidential` footage is
//!   uploaded, then its local bytes evicted after `evict_after` (it stays readable from the
//!   cloud), `default` footage is deleted after `delete_after`; a legal hold beats deletion;
//! - a store created with a simulated clock accepts a decision time in the future (an
//!   ordinary store refuses one: [`footage::Error::ClockAhead`]), so the example can jump 40 days;
//! - background retention takes its time from the clock it is given.

use std::sync::Arc;
use std::time::Duration;

use footage::{RetentionOptions, SegmentMeta, Store, StoreOptions};

/// 2025-11-20 14:03:00 UTC, µs since the Unix epoch: when the footage was recorded.
const T0_US: i64 = 1_763_647_380_000_000;
/// One day, in µs.
const DAY_US: i64 = 86_400_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("usage: retention   (runs in a temporary directory; no arguments)");
        return Ok(());
    }
    let temp = tempfile::tempdir()?;
    let root = temp.path().join("store");
    let cloud = temp.path().join("cloud");
    std::fs::create_dir(&cloud)?;

    let opts = StoreOptions {
        simulated_clock: true,
        ..StoreOptions::default()
    };
    let store = Store::create_with(&root, &opts)?;
    std::fs::write(
        root.join("policy.toml"),
        format!(
            r#"[cloud]
url = "file://{}"

[category.default]
upload = false
evict_after = "31d"
delete_after = "31d"

[category.evidential]
upload = true
evict_after = "30d"
delete_after = "2555d"
"#,
            cloud.display()
        ),
    )?;
    let policy = store.policy()?;
    println!(
        "policy: cloud {}, {} categories",
        policy.cloud_url,
        policy.categories.len()
    );

    let ingest = |officer: &str, category: Option<&str>| {
        let meta = SegmentMeta {
            officer: officer.into(),
            device: format!("cam-{officer}"),
            start_us: T0_US,
            end_us: T0_US + 600_000_000,
            categories: category.map(|c| vec![c.to_string()]).unwrap_or_default(),
            ..SegmentMeta::default()
        };
        store.ingest_bytes(meta, format!("video of {officer}").as_bytes())
    };
    let evidence = ingest("MET-1", Some("evidential"))?.id;
    let routine = ingest("MET-2", None)?.id;
    let held = ingest("MET-3", None)?.id;
    store.hold(held, "OP-ELM", "sergeant")?;

    // What is coming up in the 60 days after the recording.
    for item in store.retention_plan(T0_US, 60)? {
        println!("plan: {} {} at {}", item.action, item.id, item.at);
    }

    // 40 days later: the evidence is uploaded and evicted, the routine footage deleted, the
    // held footage kept.
    let summary = store.retention_apply(T0_US + 40 * DAY_US, false, "retention", &mut |_| {})?;
    println!(
        "apply at {}: uploaded {}, evicted {}, deleted {}, held {}",
        summary.now, summary.uploaded, summary.evicted, summary.deleted, summary.held
    );
    assert!(store.info(routine).is_err(), "deleted footage is gone");
    println!("evidence now in tier {}", store.info(evidence)?.tier);
    let back = store.read_range(evidence, 0, 8)?; // read through from the cloud copy
    println!(
        "evidence still readable: {:?}",
        String::from_utf8_lossy(&back)
    );

    // Background retention with an injected clock (a test or a replay would do the same).
    let clock: footage::RetentionClock = Arc::new(|| T0_US + 41 * DAY_US);
    let handle = store.start_retention(RetentionOptions {
        interval: Duration::from_secs(3600),
        clock: Some(clock),
        ..RetentionOptions::default()
    })?;
    if handle.wait_for_runs(1, Duration::from_secs(30)) {
        match handle.last() {
            Some(Ok(s)) => println!("background run at {}: {} deleted", s.now, s.deleted),
            Some(Err(e)) => println!("background run failed: {e}"),
            None => {}
        }
    }
    handle.stop();
    store.close()?;
    Ok(())
}
