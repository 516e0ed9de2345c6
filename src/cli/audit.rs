//! `footage audit`: the audit log as JSON lines, or `--verify` to check its hash chain.

use clap::Args;

use super::{print_json, println_out, segment_arg, time_arg};
use crate::Store;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries about this segment
    #[arg(long, value_parser = segment_arg, value_name = "ID")]
    pub segment: Option<u64>,
    /// Only entries recorded at or after this time (RFC 3339)
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub since: Option<i64>,
    /// Check the whole hash chain instead (exit 1 and name the first broken link)
    #[arg(long, conflicts_with_all = ["segment", "since"])]
    pub verify: bool,
    /// With --verify: also compare the log with the chain head published to the cloud tier
    /// (detects a truncated or rewritten tail)
    #[arg(long, requires = "verify")]
    pub cloud: bool,
    /// Publish the current chain head to the cloud tier now (retention apply does it too)
    #[arg(long, conflicts_with_all = ["segment", "since", "verify"])]
    pub publish: bool,
}

pub fn run(store: &Store, args: AuditArgs) -> anyhow::Result<i32> {
    if args.publish {
        print_json(&store.publish_audit_head()?)?;
        return Ok(super::EXIT_OK);
    }
    if !args.verify {
        for e in store.audit_entries(args.segment, args.since)? {
            println_out(&serde_json::to_string(&e)?)?;
        }
        return Ok(super::EXIT_OK);
    }
    let report = store.audit_verify()?;
    let cloud = if args.cloud {
        Some(store.audit_check_cloud()?)
    } else {
        None
    };
    match &cloud {
        None => print_json(&report)?,
        Some((head, problem)) => {
            let mut v = serde_json::to_value(&report)?;
            v["cloud_head"] = serde_json::json!({ "head": head, "problem": problem });
            print_json(&v)?;
        }
    }
    if let Some((_, Some(problem))) = &cloud {
        eprintln!("error: {problem}");
        return Ok(super::EXIT_FAILURE);
    }
    match &report.first_broken {
        None => Ok(super::EXIT_OK),
        Some(b) => {
            let when = b
                .time
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            eprintln!(
                "error: the audit chain is broken at entry {}{when}: {} [{} offset {}]; {} problem(s) in all",
                b.index,
                b.what,
                b.file,
                b.offset,
                report.problems.len()
            );
            Ok(super::EXIT_FAILURE)
        }
    }
}
