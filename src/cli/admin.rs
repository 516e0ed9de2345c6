//! `footage stats`, `footage verify` and `footage scrub`.

use clap::Args;

use super::{print_json, progress_bar, segment_arg};
use crate::{ScrubOptions, Store, VerifyOptions};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  footage verify                     every local copy: chunk CRCs and SHA-256
  footage verify --repair            ... and rewrite damaged chunks from verified cloud copies
  footage verify --cloud             ... and check every cloud copy (meta.json, parts, CRCs, SHA-256)
  footage verify 42

Exit code 1 when a segment is corrupt (and not repaired), a local copy is unreachable (its disk
failed or its volume is missing), or a cloud copy is missing or damaged.")]
pub struct VerifyArgs {
    /// Verify only this segment
    #[arg(value_parser = segment_arg)]
    pub id: Option<u64>,
    /// Repair damaged chunks of segments that have a verified cloud copy
    #[arg(long)]
    pub repair: bool,
    /// Also check the cloud copy of every uploaded segment
    #[arg(long)]
    pub cloud: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  footage scrub                      one pass at 50MB/s, resuming where the last one stopped
  footage scrub --rate 200MB/s
  footage serve --scrub-rate 50MB/s  the same, continuously, in the background of the server

Corrupt segments are recorded in the audit log (`corruption`) and listed by `stats` and
`verify`; those with a verified cloud copy are repaired from it (`repair`).")]
pub struct ScrubArgs {
    /// Bandwidth to read at: bytes per second, or with a unit: 500KB/s, 50MB/s, 1GB/s
    #[arg(long, default_value = "50MB/s", value_parser = rate_arg)]
    pub rate: u64,
    /// Only report damage; do not repair from the cloud
    #[arg(long)]
    pub no_repair: bool,
}

/// Parses a bandwidth: a number of bytes per second, optionally with KB/MB/GB (powers of
/// 1000) or KiB/MiB/GiB (powers of 1024), optionally followed by `/s`.
pub(crate) fn rate_arg(s: &str) -> Result<u64, String> {
    crate::service::config::parse_rate(s)
}

/// The store's figures; beside a running service (a read-only open), also the service's own
/// state (background jobs, dock folder, uploads, control channel) asked over its control
/// channel, under `"service"`.
pub fn stats(store: &Store) -> anyhow::Result<i32> {
    let mut v = serde_json::to_value(store.stats()?)?;
    if store.is_read_only() {
        let status = crate::control::ControlClient::connect(store.root())
            .and_then(|c| c.status())
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
        if let Some(m) = v.as_object_mut() {
            m.insert("service".into(), status);
        }
    }
    print_json(&v)?;
    Ok(super::EXIT_OK)
}

pub fn verify(store: &Store, args: VerifyArgs) -> anyhow::Result<i32> {
    let ids = args.id.map(|id| vec![id]);
    let total = match &args.id {
        Some(id) => store.info(*id)?.bytes,
        None => store.stats()?.bytes,
    };
    let total = if args.cloud { total * 2 } else { total };
    let pb = progress_bar(total, "verifying");
    let opts = VerifyOptions {
        repair: args.repair,
        cloud: args.cloud,
    };
    let report = store.verify_with(ids, opts, |n| pb.inc(n))?;
    pb.finish_and_clear();
    let mut problems = Vec::new();
    if !report.corrupt.is_empty() {
        problems.push(format!(
            "{} of {} segments are corrupt: {}",
            report.corrupt.len(),
            report.checked,
            report.corrupt.join(", ")
        ));
    }
    if !report.lost.is_empty() {
        let ids: Vec<&str> = report.lost.iter().map(|l| l.id.as_str()).collect();
        problems.push(format!(
            "{} segments are unreachable on disk: {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    if !report.cloud_problems.is_empty() {
        let mut ids: Vec<&str> = report
            .cloud_problems
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        ids.dedup();
        problems.push(format!(
            "{} cloud copies are missing or damaged: {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    if !report.volume_damage.is_empty() {
        problems.push(format!(
            "{} damaged volume regions: {}",
            report.volume_damage.len(),
            report.volume_damage.join("; ")
        ));
    }
    if !report.lost_changes.is_empty() {
        problems.push(format!(
            "{} acknowledged changes are missing from the store: {}",
            report.lost_changes.len(),
            report.lost_changes.join("; ")
        ));
    }
    print_json(&report)?;
    if !problems.is_empty() {
        super::eprintln_out(&format!("error: {}", problems.join("; ")));
        return Ok(super::EXIT_FAILURE);
    }
    Ok(super::EXIT_OK)
}

pub fn scrub(store: &Store, args: ScrubArgs) -> anyhow::Result<i32> {
    let opts = ScrubOptions {
        bytes_per_sec: args.rate,
        repair: !args.no_repair,
        ..ScrubOptions::default()
    };
    let pb = progress_bar(store.stats()?.bytes, "scrubbing");
    let status = store.scrub_pass(&opts, &mut |n| pb.inc(n))?;
    pb.finish_and_clear();
    let summary = store.scrub_summary();
    print_json(&serde_json::json!({ "run": status, "store": summary }))?;
    if summary.corrupt_segments > 0 || status.lost > 0 {
        super::eprintln_out(&format!(
            "error: {} corrupt segments known, {} unreachable on disk in this pass",
            summary.corrupt_segments, status.lost
        ));
        return Ok(super::EXIT_FAILURE);
    }
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::rate_arg;

    #[test]
    fn rates_take_decimal_and_binary_units_and_refuse_nonsense() {
        assert_eq!(rate_arg("1000"), Ok(1000));
        assert_eq!(rate_arg("50MB/s"), Ok(50_000_000));
        assert_eq!(rate_arg("64MiB/s"), Ok(64 << 20));
        assert_eq!(rate_arg("2g"), Ok(2_000_000_000));
        for bad in [
            "",
            "0",
            "0MB/s",
            "-5",
            "5 TB",
            "fast",
            "99999999999999999999GB",
        ] {
            assert!(rate_arg(bad).is_err(), "{bad}");
        }
    }
}
