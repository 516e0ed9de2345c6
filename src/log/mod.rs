//! The log: append-only volume files holding chunk, commit and seal records.
//!
//! - [`volume`]: one volume file, read through mmap once sealed, pread while active;
//! - [`writer`]: appends records to an active volume and shares fsyncs between concurrent
//!   committers (group commit);
//! - [`scan`]: walks a volume's record headers on open, collects commit records and finds the
//!   torn tail a power cut leaves.
//!
//! Invariant: bytes are only ever appended to a volume (or, after a crash, a torn tail is cut
//! off); a record that a durable commit record points to is never rewritten.

pub mod scan;
pub mod volume;
pub mod writer;

use std::path::Path;

use crate::error::{IoContext, Result};

/// fsyncs a directory so that a file created or renamed in it survives a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).at(dir)?.sync_all().at(dir)
}

/// File name of volume `id`.
pub fn volume_file_name(id: u32) -> String {
    format!("vol-{id:08}.ftv")
}

/// The volume id named by a file name, if it is a volume file.
pub fn parse_volume_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("vol-")?
        .strip_suffix(".ftv")?
        .parse()
        .ok()
}
