//! The files of `<store>/audit/`: naming and listing the `audit-<seq>.log` files, creating a
//! new one, reading and writing `HEAD`, and keeping a cut torn tail aside.
//!
//! Invariants:
//! - a new audit file appears only complete with its header (written to `.tmp`, fsynced,
//!   renamed, directory fsynced), so an `audit-*.log` file never lacks its header because of
//!   a crash;
//! - `HEAD` is replaced atomically the same way; it is written only for a durable chain head;
//! - bytes cut from a torn tail are first saved (fsynced) in `torn-<seq>-<offset>.bin`, so
//!   cutting never destroys what may be evidence of tampering.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::format::{FileHeader, HeadFile};
use crate::error::{Error, IoContext, Result};

pub const AUDIT_DIR: &str = "audit";
pub const HEAD_FILE: &str = "HEAD";

pub fn file_name(seq: u32) -> String {
    format!("audit-{seq:08}.log")
}

fn parse_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("audit-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The audit files in `dir`, ascending by number.
pub fn list(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for ent in rd {
        let ent = ent.at(dir)?;
        if let Some(seq) = ent.file_name().to_str().and_then(parse_file_name) {
            out.push((seq, ent.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Writes `bytes` to `dir/name` atomically (temporary file, fsync, rename, directory fsync).
/// A failed write removes the temporary file.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let dst = dir.join(name);
    crate::log::write_atomic(&dst, bytes)?;
    Ok(dst)
}

/// Creates audit file `header.seq` (header only) and opens it for appending.
pub fn create(dir: &Path, header: &FileHeader) -> Result<(File, PathBuf)> {
    let path = write_atomic(dir, &file_name(header.seq), &header.encode())?;
    let file = open_rw(&path)?;
    Ok((file, path))
}

pub fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)
}

/// Reads `HEAD`: `Ok(None)` if there is none, `Err(why)` if it cannot be used.
pub fn read_head(dir: &Path) -> Result<Option<HeadFile>, String> {
    let path = dir.join(HEAD_FILE);
    match fs::read(&path) {
        Ok(b) => HeadFile::decode(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn write_head(dir: &Path, head: &HeadFile) -> Result<()> {
    write_atomic(dir, HEAD_FILE, &head.encode()).map(|_| ())
}

/// Saves `bytes` (a torn tail cut from file `seq` at `offset`) next to the log.
pub fn save_torn(dir: &Path, seq: u32, offset: u64, bytes: &[u8]) -> Result<PathBuf> {
    write_atomic(dir, &format!("torn-{seq:08}-{offset}.bin"), bytes)
}

/// Removes `.tmp` files a crash left behind.
pub fn remove_temporaries(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for ent in rd.flatten() {
            if ent
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".tmp"))
            {
                let _ = crate::fsio::remove_file(&ent.path());
            }
        }
    }
}
