//! `footage stats` and `footage verify`.

use clap::Args;
use serde::Serialize;

use super::{print_json, progress_bar, segment_arg};
use crate::Store;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Verify only this segment
    #[arg(value_parser = segment_arg)]
    pub id: Option<u64>,
}

pub fn stats(store: &Store) -> anyhow::Result<i32> {
    print_json(&store.stats()?)?;
    Ok(super::EXIT_OK)
}

#[derive(Serialize)]
struct VerifyOutput {
    checked: usize,
    bytes: u64,
    corrupt: Vec<String>,
    errors: Vec<crate::CorruptSegment>,
    volume_damage: Vec<String>,
}

pub fn verify(store: &Store, args: VerifyArgs) -> anyhow::Result<i32> {
    let ids = args.id.map(|id| vec![id]);
    let total = match &args.id {
        Some(id) => store.info(*id)?.bytes,
        None => store.stats()?.bytes,
    };
    let pb = progress_bar(total, "verifying");
    let report = store.verify(ids, |n| pb.inc(n))?;
    pb.finish_and_clear();
    let failed = !report.corrupt.is_empty() || !report.volume_damage.is_empty();
    let summary = format!(
        "{} of {} segments are corrupt: {}; {} damaged volume regions: {}",
        report.corrupt.len(),
        report.checked,
        report.corrupt.join(", "),
        report.volume_damage.len(),
        report.volume_damage.join("; ")
    );
    print_json(&VerifyOutput {
        checked: report.checked,
        bytes: report.bytes,
        corrupt: report.corrupt,
        errors: report.errors,
        volume_damage: report.volume_damage,
    })?;
    if failed {
        eprintln!("error: {summary}");
        return Ok(super::EXIT_FAILURE);
    }
    Ok(super::EXIT_OK)
}
