//! `footage restore`, `pin` and `unpin`: bringing evicted footage back to the station and
//! keeping it there (src/store/restore.rs, pin.rs, restore_queue.rs). Each prints one JSON
//! line per segment; while `footage serve` runs, the service carries them out (beside.rs).
//!
//! Invariant: a segment that fails does not stop the others; the command exits 1 if any
//! failed, after printing a line for each (`"outcome": "failed"` with the error; a restore
//! refused for want of room below the high watermark adds `needed_bytes` and `room_bytes`).
//! A restore whose audit entry could not be written is restored (exit 0) and its line
//! carries `audit_error`.

use clap::Args;

use super::{id_arg, print_json, segment_arg, time_arg};
use crate::Store;

const RESTORE_EXAMPLES: &str = "\
Examples:
  footage restore 42 43                       bring two evicted segments back now (SHA-256 checked)
  footage restore --case OP-TRIDENT-7         every evicted segment of a case, before a hearing
  footage restore --case OP-TRIDENT-7 --queue leave it to footage serve's background restores
  footage restore --queued                    run the restore queue now, in the foreground";

const PIN_EXAMPLES: &str = "\
Examples:
  footage pin 42                              keep segment 42 local (restored first if evicted)
  footage pin --case OP-TRIDENT-7 --until 2027-03-01T00:00:00Z   a case going to court
  footage unpin --case OP-TRIDENT-7           retention may evict it again";

#[derive(Args, Debug)]
#[command(after_help = RESTORE_EXAMPLES)]
pub struct RestoreArgs {
    /// Segment ids
    #[arg(value_parser = segment_arg, required_unless_present_any = ["case", "queued"])]
    pub ids: Vec<u64>,
    /// Every segment linked to this case
    #[arg(long, value_parser = id_arg, value_name = "CASE", conflicts_with = "ids")]
    pub case: Option<String>,
    /// Queue them for the background restores of `footage serve` instead of restoring now
    #[arg(long, conflicts_with = "queued")]
    pub queue: bool,
    /// Restore everything in the restore queue now (footage serve does this by itself)
    #[arg(long, conflicts_with_all = ["ids", "case"])]
    pub queued: bool,
}

#[derive(Args, Debug)]
#[command(after_help = PIN_EXAMPLES)]
pub struct PinArgs {
    /// Segment ids
    #[arg(value_parser = segment_arg, required_unless_present = "case")]
    pub ids: Vec<u64>,
    /// Every segment linked to this case now (footage linked later is not covered)
    #[arg(long, value_parser = id_arg, value_name = "CASE", conflicts_with = "ids")]
    pub case: Option<String>,
    /// Keep it local until this time (RFC 3339); without it, until unpinned
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub until: Option<i64>,
}

#[derive(Args, Debug)]
#[command(after_help = PIN_EXAMPLES)]
pub struct UnpinArgs {
    /// Segment ids
    #[arg(value_parser = segment_arg, required_unless_present = "case")]
    pub ids: Vec<u64>,
    /// Every pinned segment linked to this case
    #[arg(long, value_parser = id_arg, value_name = "CASE", conflicts_with = "ids")]
    pub case: Option<String>,
}

fn failed_line(id: u64, e: &crate::Error) -> anyhow::Result<()> {
    let mut line = serde_json::json!({
        "id": id.to_string(),
        "outcome": "failed",
        "error": e.to_string(),
    });
    if let crate::Error::NoRoom { needed, room, .. } = e {
        // The message says what to do; these say how much room is missing.
        line["needed_bytes"] = (*needed).into();
        line["room_bytes"] = (*room).into();
    }
    print_json(&line)
}

pub fn restore(store: &Store, args: RestoreArgs, actor: &str) -> anyhow::Result<i32> {
    if args.queued {
        let run = store.run_restore_queue(&crate::RunLimits {
            rate: None,
            budget: None,
        })?;
        print_json(&run)?;
        let bad = !run.failed.is_empty() || !run.retry.is_empty() || run.waiting_for_room > 0;
        return Ok(if bad {
            super::EXIT_FAILURE
        } else {
            super::EXIT_OK
        });
    }
    let ids = match &args.case {
        Some(case) => {
            let ids = store.case_segments(case);
            if ids.is_empty() {
                anyhow::bail!("no segment is linked to case {case:?}");
            }
            ids
        }
        None => args.ids,
    };
    if args.queue {
        let added = store.queue_restore(&ids, actor, "restore")?;
        print_json(&serde_json::json!({
            "queued": added,
            "pending": store.restore_stats().pending,
        }))?;
        return Ok(super::EXIT_OK);
    }
    let mut code = super::EXIT_OK;
    for id in ids {
        match store.restore(id, actor) {
            Ok(o) => print_json(&o)?,
            Err(e) => {
                failed_line(id, &e)?;
                code = super::EXIT_FAILURE;
            }
        }
    }
    Ok(code)
}

pub fn pin(store: &Store, args: PinArgs, actor: &str) -> anyhow::Result<i32> {
    let infos = match &args.case {
        Some(case) => store.pin_case(case, args.until, actor)?,
        None => {
            let mut out = Vec::new();
            for id in args.ids {
                out.push(store.pin(id, args.until, actor)?);
            }
            out
        }
    };
    for i in infos {
        print_json(&i)?;
    }
    Ok(super::EXIT_OK)
}

pub fn unpin(store: &Store, args: UnpinArgs, actor: &str) -> anyhow::Result<i32> {
    let infos = match &args.case {
        Some(case) => store.unpin_case(case, actor)?,
        None => {
            let mut out = Vec::new();
            for id in args.ids {
                out.push(store.unpin(id, actor)?);
            }
            out
        }
    };
    for i in infos {
        print_json(&i)?;
    }
    Ok(super::EXIT_OK)
}
