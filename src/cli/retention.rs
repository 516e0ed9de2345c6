//! `footage retention plan|apply` and `footage recover --from-cloud`.

use clap::{Args, Subcommand};

use super::{print_json, println_out, time_arg};
use crate::Store;

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// List what will be uploaded, evicted and deleted in the next N days (JSON lines)
    Plan(PlanArgs),
    /// Upload, evict and delete what policy.toml says is due; print a JSON summary
    Apply(ApplyArgs),
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Pretend it is this time (RFC 3339); default: now
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub now: Option<i64>,
    /// How many days ahead to look
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub days: u32,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Pretend it is this time (RFC 3339); default: now
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub now: Option<i64>,
    /// Count what would happen without changing anything
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Rebuild the catalog from the cloud tier (the only source supported)
    #[arg(long, required = true)]
    pub from_cloud: bool,
    /// Cloud URL (file://, az://, s3://, gs://); default: cloud.url of policy.toml in --store
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Id of the lost store, when the URL holds several
    #[arg(long, value_name = "STORE_ID")]
    pub source: Option<String>,
}

pub fn run(store: &Store, cmd: RetentionCommand, actor: &str) -> anyhow::Result<i32> {
    match cmd {
        RetentionCommand::Plan(a) => {
            let now = a.now.unwrap_or_else(crate::now_us);
            for item in store.retention_plan(now, a.days)? {
                println_out(&serde_json::to_string(&item)?)?;
            }
            Ok(super::EXIT_OK)
        }
        RetentionCommand::Apply(a) => {
            let now = a.now.unwrap_or_else(crate::now_us);
            let pb = indicatif::ProgressBar::with_draw_target(None, super::progress_target());
            let style = indicatif::ProgressStyle::with_template(
                "{msg:20} [{bar:40}] {pos}/{len} segments {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            pb.set_style(style);
            let summary = store.retention_apply(now, a.dry_run, actor, &mut |p| {
                pb.set_length(p.total);
                pb.set_position(p.done);
                pb.set_message(format!("{} {}", p.action, p.id));
            })?;
            pb.finish_and_clear();
            print_json(&summary)?;
            if summary.failed.is_empty() {
                Ok(super::EXIT_OK)
            } else {
                super::eprintln_out(&format!(
                    "error: {} actions failed and will be retried by the next apply",
                    summary.failed.len()
                ));
                Ok(super::EXIT_FAILURE)
            }
        }
    }
}

pub fn recover(
    root: &std::path::Path,
    a: RecoverArgs,
    actor: &str,
    key: Option<crate::Key>,
) -> anyhow::Result<i32> {
    let url = match a.url {
        Some(u) => u,
        None => {
            let path = root.join(crate::retention::policy::POLICY_FILE);
            if !path.exists() {
                anyhow::bail!(
                    "give --url, or put the lost store's policy.toml in {}",
                    root.display()
                );
            }
            let text = std::fs::read_to_string(&path)?;
            crate::retention::policy::Policy::parse(&text, &path)?.cloud_url
        }
    };
    let (store, report) = Store::recover_from_cloud(
        root,
        &url,
        a.source.as_deref(),
        &crate::StoreOptions {
            key,
            ..crate::StoreOptions::default()
        },
        actor,
    )?;
    store.close()?;
    print_json(&report)?;
    Ok(super::EXIT_OK)
}
