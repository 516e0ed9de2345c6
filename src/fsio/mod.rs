//! The durable-write I/O layer: every write, length change and fsync of a file the store
//! keeps (volumes, checkpoints, config, policy, the track file, the audit log) goes through
//! these few functions, so tests can make any one of them fail ([`faults`]).
//!
//! Each function is the plain syscall (`pwrite`, `ftruncate`, `fdatasync`, `fsync`) when no
//! fault is injected: the only added cost is one relaxed atomic load. Reads are not routed
//! here: a read cannot make stored data less durable.
//!
//! Durability promises, per function:
//! - [`write_all_at`] returns `Ok` only once every byte is in the page cache (not durable); it
//!   keeps going after a short count and fails on a zero count, so a caller never mistakes a
//!   partial write for a whole one. On error some prefix may have been written: the caller
//!   cuts it back.
//! - [`sync_data`] / [`sync_all`] return `Ok` only once everything written before is durable
//!   (`fdatasync` / `fsync`). After an error nothing may be assumed durable, and a retry is
//!   not trustworthy (the kernel may have dropped the dirty pages): callers poison.
//! - [`set_len`] changes the length (not durable until a sync).
//!
//! New write paths (compaction, scrub/repair) should call these instead of `std::fs`
//! methods so the fault tests reach them too.

pub mod faults;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use faults::Op;

/// Writes all of `buf` at `offset`, looping over short counts.
pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let r = match faults::check(Op::Write) {
            None => file.write_at(buf, offset),
            Some(f) => f.write_at(file, buf, offset),
        };
        match r {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the file system accepted no bytes",
                ))
            }
            Ok(n) => {
                buf = buf.get(n..).unwrap_or_default();
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fdatasync`: the file's data (and the metadata needed to read it) is durable.
pub fn sync_data(file: &File) -> io::Result<()> {
    match faults::check(Op::Sync) {
        None => file.sync_data(),
        Some(f) => f.fail(),
    }
}

/// `fsync`: the file's data and all its metadata are durable (also used for directories).
pub fn sync_all(file: &File) -> io::Result<()> {
    match faults::check(Op::Sync) {
        None => file.sync_all(),
        Some(f) => f.fail(),
    }
}

/// `ftruncate`: sets the file's length (cuts back a failed append, or extends with zeros).
pub fn set_len(file: &File, len: u64) -> io::Result<()> {
    match faults::check(Op::SetLen) {
        None => file.set_len(len),
        Some(f) => f.fail(),
    }
}
