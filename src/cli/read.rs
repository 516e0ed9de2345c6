//! `footage get`, `footage export` and `footage info`.
//!
//! `get --verify` checks the segment's SHA-256 while streaming: with `--out` the file appears
//! only if it matched (temporary file, fsync, rename); to stdout every byte but the last read
//! has been written when a mismatch is found, the last bytes are withheld, and the command
//! fails (exit 1).
//!
//! `--out FILE` never writes through a link nor over what is there: the bytes go to a new
//! temporary file with an unpredictable name beside FILE (`O_EXCL|O_NOFOLLOW`, mode 0640),
//! which takes FILE's name only if nothing has it; `--force` lets it replace a file or a link
//! at FILE (the link itself, never its target).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{print_json, segment_arg};
use crate::fsio::atomic::{Place, TempFile};
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
    /// With --out: replace FILE if it exists (a link at FILE is replaced, never followed)
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Check the whole segment's SHA-256 while copying; fail rather than deliver bytes that
    /// do not match (with --out the file is not created)
    #[arg(long, conflicts_with_all = ["offset", "length"])]
    pub verify: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// Directory to write <ID>.mp4 (or .bin) and <ID>.custody.json into
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
}

pub fn get(store: &Store, args: GetArgs) -> anyhow::Result<i32> {
    if args.verify {
        let r = store.open_verified(args.id)?;
        return deliver(r, args.out.as_deref(), args.force);
    }
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
    deliver(r.take(len), args.out.as_deref(), args.force)
}

/// The error for an `--out` FILE that is already there.
fn exists_error(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} already exists: give another --out, or --force to replace it",
        path.display()
    )
}

/// Copies to `out` atomically (temporary file, fsync, rename), or to stdout.
fn deliver(mut limited: impl Read, out: Option<&Path>, force: bool) -> anyhow::Result<i32> {
    deliver_with(
        |w| {
            std::io::copy(&mut limited, w)?;
            Ok(())
        },
        out,
        force,
    )
}

/// What `write` writes, to `out` atomically (temporary file, fsync, rename: nothing appears
/// if `write` fails), or to stdout.
pub(crate) fn deliver_with(
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    out: Option<&Path>,
    force: bool,
) -> anyhow::Result<i32> {
    match out {
        Some(path) => {
            // Refused before reading anything; checked again, atomically, by the rename.
            if !force && std::fs::symlink_metadata(path).is_ok() {
                return Err(exists_error(path));
            }
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let stem = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut tmp = TempFile::create(dir, &stem, crate::perms::FILE_MODE)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            write(&mut tmp)?;
            // rename(2) replaces a link at `path` (--force); it never writes through it.
            let how = if force {
                Place::Replace
            } else {
                Place::NoReplace
            };
            tmp.commit(path, how, "get.file", "get.before_rename", "get.dir")
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => exists_error(path),
                    _ => anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
                })?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(super::EXIT_OK)
}

pub fn export(store: &Store, args: ExportArgs) -> anyhow::Result<i32> {
    print_json(&store.export(args.id, &args.out)?)?;
    Ok(super::EXIT_OK)
}

pub fn info(store: &Store, args: InfoArgs) -> anyhow::Result<i32> {
    print_json(&store.info(args.id)?)?;
    Ok(super::EXIT_OK)
}
