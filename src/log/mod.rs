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
use crate::fsio::atomic::{Place, TempFile};

/// fsyncs a directory so that a file created, renamed or removed in it survives a power
/// cut. `site` names the call for the power-loss tests (`fsio::record::skip_sync`).
pub fn sync_dir(dir: &Path, site: &'static str) -> Result<()> {
    crate::fsio::sync_dir(dir, site).at(dir)
}

/// Writes a whole file so that a crash leaves either the old file or the new one: a
/// temporary file beside it, fsync, rename over, fsync of the directory. If writing the
/// temporary file fails it is removed, so a full disk gets its space back and no `.tmp` file
/// is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    crate::fsio::create_dir_all(dir).at(dir)?;
    let mut tmp = TempFile::beside(path, crate::perms::FILE_MODE).at(path)?;
    // A failed write or sync drops `tmp`, which removes it: a full disk gets its space back.
    tmp.write_all(bytes).at(tmp.path())?;
    tmp.commit(
        path,
        Place::Replace,
        "write_atomic.file",
        "write_atomic.before_rename",
        "write_atomic.dir",
    )
    .at(path)
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
