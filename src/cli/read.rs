//! `footage get` and `footage info`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{print_json, segment_arg};
use crate::Store;

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// First byte to read
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Bytes to read (default: to the end)
    #[arg(long)]
    pub length: Option<u64>,
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
}

pub fn get(store: &Store, args: GetArgs) -> anyhow::Result<i32> {
    let mut r = store.open_segment(args.id)?;
    if args.offset > r.len() {
        anyhow::bail!(
            "--offset {} is past the end of segment {} ({} bytes)",
            args.offset,
            args.id,
            r.len()
        );
    }
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(args.offset))?;
    let len = args.length.unwrap_or(u64::MAX).min(r.len() - args.offset);
    let mut limited = r.take(len);
    match &args.out {
        Some(path) => {
            let tmp = path.with_extension("footage-partial");
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let copied = std::io::copy(&mut limited, &mut f);
            let finished = copied
                .map_err(anyhow::Error::from)
                .and_then(|_| f.sync_all().map_err(anyhow::Error::from))
                .and_then(|_| {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))
                });
            if let Err(e) = finished {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut limited, &mut out)?;
            out.flush()?;
        }
    }
    Ok(super::EXIT_OK)
}

pub fn info(store: &Store, args: InfoArgs) -> anyhow::Result<i32> {
    print_json(&store.info(args.id)?)?;
    Ok(super::EXIT_OK)
}
