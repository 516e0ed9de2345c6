//! `footage fleet`: the force-wide table (`crate::fleet`): `publish` this store's catalogue
//! as a station, `find` across every station, `get` a segment of any station from its cloud
//! copy. The table lives under the cloud url of this store's policy.toml unless `--cloud`
//! names another.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{print_json, println_out};
use crate::fleet::Fleet;
use crate::input::time::format_time;
use crate::search::SearchArgs;
use crate::Store;

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Publish this store's catalogue to the fleet table as a station (only the days that
    /// changed); prints a JSON summary. Exit status 1 if some segments could not be read
    /// (named in `unreadable`; the rest was published, their earlier rows kept)
    #[command(
        after_help = "Example:\n  footage --store /srv/footage fleet publish --station westminster"
    )]
    Publish(PublishArgs),
    /// Find segments of every station that published (the flags of `find`; JSON lines
    /// naming the station)
    #[command(
        after_help = "Examples:\n  footage fleet find --near 51.5080,-0.1247 --radius 200 \\\n    --from 2026-11-28T20:00:00Z --to 2026-11-29T04:00:00Z\n  footage fleet find --officer PC1234 --case OP-ALDER"
    )]
    Find(Box<FindArgs>),
    /// Write a segment of any station (STATION:ID) from its cloud copy, SHA-256 checked; the
    /// read is recorded in this store's audit log (actor `fleet`)
    #[command(after_help = "Example:\n  footage fleet get westminster:42 -o westminster-42.mp4")]
    Get(GetArgs),
}

#[derive(Args, Debug)]
pub struct Common {
    /// The cloud url the table lives under (default: cloud.url of this store's policy.toml)
    #[arg(long, value_name = "URL", env = "FOOTAGE_FLEET_URL")]
    pub cloud: Option<String>,
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// This store's station name (1 to 64 letters, digits, '-', '_', '.')
    #[arg(long, env = "FOOTAGE_STATION", value_name = "NAME")]
    pub station: String,
    /// Publish an encrypted store's metadata (officers, places, labels) in plaintext
    #[arg(long)]
    pub allow_plaintext_metadata: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// Print a summary (table version, files read of all) on stderr
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The segment, as STATION:ID
    pub target: String,
    /// Write to this file (it appears only if the SHA-256 matched) instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With --out: replace FILE if it exists
    #[arg(long, requires = "out")]
    pub force: bool,
    #[command(flatten)]
    pub common: Common,
}

fn connect(store: &Store, common: &Common) -> anyhow::Result<Fleet> {
    Ok(match &common.cloud {
        Some(url) => Fleet::open(url)?,
        None => Fleet::for_store(store)?,
    })
}

pub fn run(store: &Store, command: FleetCommand) -> anyhow::Result<i32> {
    match command {
        FleetCommand::Publish(a) => {
            let fleet = connect(store, &a.common)?;
            let report = fleet.publish(store, &a.station, a.allow_plaintext_metadata)?;
            print_json(&report)?;
            if !report.unreadable.is_empty() {
                eprintln!(
                    "warning: {} segment(s) could not be read ({:?}{}); their previously published rows were kept; run `footage verify`",
                    report.unreadable.len(),
                    &report.unreadable[..report.unreadable.len().min(20)],
                    if report.unreadable.len() > 20 { ", ..." } else { "" }
                );
                return Ok(super::EXIT_FAILURE);
            }
        }
        FleetCommand::Find(a) => {
            let q = a.search.query();
            if let Err(e) = q.validate() {
                eprintln!("error: {e}");
                return Ok(super::EXIT_USAGE);
            }
            let fleet = connect(store, &a.common)?;
            let ans = fleet.find_audited(store, &q)?;
            let limit = q.limit.unwrap_or(usize::MAX);
            for r in ans.results.iter().take(limit) {
                let mut line = serde_json::json!({
                    "station": r.row.station,
                    "id": r.row.segment_id,
                    "store_id": r.row.store_id,
                    "officer": r.row.officer,
                    "device": r.row.device,
                    "start": format_time(r.row.start_us),
                    "end": format_time(r.row.end_us),
                    "bytes": r.row.bytes,
                    "sha256": r.row.sha256,
                    "tier": r.row.tier,
                    "cloud_copy": r.cloud_copy(),
                });
                if q.area.is_some() {
                    line["hits"] = r
                        .hits
                        .iter()
                        .map(|h| serde_json::json!({"from": format_time(h.from_us), "to": format_time(h.to_us)}))
                        .collect();
                    line["hits_omitted"] = r.hits_omitted.into();
                }
                println_out(&line.to_string())?;
            }
            if ans.results.len() > limit {
                eprintln!("{} more results (raise --limit)", ans.results.len() - limit);
            }
            if a.stats {
                eprintln!(
                    "{}",
                    serde_json::json!({"version": ans.version, "files": ans.files,
                        "files_read": ans.files_read, "rows_read": ans.rows_read,
                        "results": ans.results.len()})
                );
            }
        }
        FleetCommand::Get(a) => {
            let (station, id) = crate::fleet::parse_target(&a.target)?;
            let fleet = connect(store, &a.common)?;
            let mut fetched = None;
            let code = super::read::deliver_with(
                |w| {
                    fetched = Some(fleet.get(store, &station, id, w)?);
                    Ok(())
                },
                a.out.as_deref(),
                a.force,
            )?;
            if let Some(f) = fetched {
                eprintln!("{}", serde_json::to_string(&f)?);
            }
            return Ok(code);
        }
    }
    Ok(super::EXIT_OK)
}
