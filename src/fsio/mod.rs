//! The durable-write I/O layer: every write, length change, hole punch and fsync of a file
//! the store keeps (volumes, checkpoints, config, policy, the track file, the audit log), and
//! every creation, rename, unlink and directory fsync in the store's directories, goes through
//! these few functions, so tests can make any one of them fail ([`faults`]) or record them to
//! build the disk a power cut would leave ([`record`]).
//!
//! Each function is the plain syscall (`pwrite`, `ftruncate`, `fallocate`, `fdatasync`,
//! `fsync`, `open`, `rename`, `unlink`, `mkdir`) when no test hook is on: the only added cost
//! is one relaxed atomic load ([`HOOKS`]). Reads are not routed here: a read cannot make
//! stored data less durable.
//!
//! Durability promises, per function:
//! - [`write_all_at`] returns `Ok` only once every byte is in the page cache (not durable); it
//!   keeps going after a short count and fails on a zero count, so a caller never mistakes a
//!   partial write for a whole one. On error some prefix may have been written: the caller
//!   cuts it back.
//! - [`sync_data`] / [`sync_all`] return `Ok` only once everything written before to the file
//!   is durable (`fdatasync` / `fsync`); not its directory entry. After an error nothing may
//!   be assumed durable, and a retry is not trustworthy (the kernel may have dropped the
//!   dirty pages): callers poison.
//! - [`sync_dir`] makes durable every creation, rename and unlink made before in that
//!   directory (not in its subdirectories, not the directory's own entry in its parent).
//! - [`set_len`] changes the length, [`punch_hole`] frees a range (not durable until a sync).
//! - [`create_file`], [`rename`], [`remove_file`] change a directory (not durable until
//!   [`sync_dir`] of it); [`create_dir_all`] makes each directory it creates durable in its
//!   parent before returning.
//!
//! Every sync takes a site name (`"volume.append"`, `"write_atomic.dir"`, ...): the names
//! the power-loss tests list when they remove one sync at a time ([`record::skip_sync`]).
//!
//! New write paths should call these instead of `std::fs` so the fault and power-loss
//! tests reach them too.

pub mod atomic;
// Their switches (inject a fault, record writes) are called only by the tests.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub mod faults;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub mod record;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use faults::Op;

/// Test hooks that are on: [`HOOK_FAULTS`] | [`HOOK_RECORD`] | [`HOOK_SKIP`]. Zero in every
/// production run, so each routed call costs one relaxed load of it.
pub(crate) static HOOKS: AtomicU8 = AtomicU8::new(0);
/// The fault injector is armed.
pub(crate) const HOOK_FAULTS: u8 = 1;
/// The power-loss recorder is on.
pub(crate) const HOOK_RECORD: u8 = 2;
/// Some sync sites are switched off.
pub(crate) const HOOK_SKIP: u8 = 4;

#[inline]
fn hooks() -> u8 {
    HOOKS.load(Ordering::Relaxed)
}

/// Writes all of `buf` at `offset`, looping over short counts.
pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let r = if hooks() == 0 {
            file.write_at(buf, offset)
        } else {
            faults::before_write(file, offset, buf.len() as u64);
            record::write_at(file, offset, buf, |buf| match faults::check(Op::Write) {
                None => file.write_at(buf, offset),
                Some(f) => f.write_at(file, buf, offset),
            })
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
pub fn sync_data(file: &File, site: &'static str) -> io::Result<()> {
    if hooks() == 0 {
        return file.sync_data();
    }
    sync_hooked(file, site, File::sync_data)
}

/// `fsync`: the file's data and all its metadata are durable.
pub fn sync_all(file: &File, site: &'static str) -> io::Result<()> {
    if hooks() == 0 {
        return file.sync_all();
    }
    sync_hooked(file, site, File::sync_all)
}

#[cold]
fn sync_hooked(
    file: &File,
    site: &'static str,
    sync: fn(&File) -> io::Result<()>,
) -> io::Result<()> {
    if record::skipped(site) {
        return Ok(());
    }
    match faults::check(Op::Sync) {
        None => {
            let r = record::sync(file, site, || sync(file));
            if r.is_ok() {
                faults::synced(file);
            }
            r
        }
        Some(f) => {
            // A kernel that fails an fsync may have dropped the dirty pages: so do we.
            faults::drop_unsynced(file);
            f.fail()
        }
    }
}

/// fsyncs the directory `dir`, making the entries created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path, site: &'static str) -> io::Result<()> {
    let f = File::open(dir)?;
    if hooks() == 0 {
        return f.sync_all();
    }
    if record::skipped(site) {
        return Ok(());
    }
    match faults::check(Op::Sync) {
        None => record::sync_dir(dir, site, || f.sync_all()),
        Some(f) => f.fail(),
    }
}

/// `ftruncate`: sets the file's length (cuts back a failed append, or extends with zeros).
pub fn set_len(file: &File, len: u64) -> io::Result<()> {
    if hooks() == 0 {
        return file.set_len(len);
    }
    faults::before_set_len(file, len);
    record::set_len(file, len, || match faults::check(Op::SetLen) {
        None => file.set_len(len),
        Some(f) => f.fail(),
    })
}

/// Frees `len` bytes at `offset` without changing the length (`fallocate` with
/// `PUNCH_HOLE | KEEP_SIZE`): the range reads as zeros. `EOPNOTSUPP` where the file system
/// cannot punch holes (the caller writes zeros instead).
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let punch = || {
        use std::os::fd::AsRawFd;
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "range too large");
        let off = libc::off_t::try_from(offset).map_err(|_| too_large())?;
        let n = libc::off_t::try_from(len).map_err(|_| too_large())?;
        // SAFETY: plain syscall on an open descriptor; KEEP_SIZE never changes the length, so
        // mappings of the file stay valid (punched pages read as zeros).
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                n,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    if hooks() == 0 {
        return punch();
    }
    faults::before_write(file, offset, len);
    record::punch(file, offset, len, punch)
}

/// How [`create_file`] treats a file that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail with `AlreadyExists` (`O_EXCL`).
    Refuse,
    /// Open it and cut it to length 0 (`O_TRUNC`).
    Truncate,
    /// Open it as it is.
    Keep,
}

/// Opens `path` for reading and writing, creating it if it does not exist. The new entry is
/// durable only after a [`sync_dir`] of its directory.
pub fn create_file(path: &Path, existing: Existing) -> io::Result<File> {
    // Modes are explicit and links never followed (crate::perms).
    let open = || match existing {
        Existing::Refuse => crate::perms::create_new(path),
        Existing::Truncate => crate::perms::replace_temp(path, crate::perms::FILE_MODE),
        Existing::Keep => crate::perms::open_or_create(path),
    };
    if hooks() & HOOK_RECORD == 0 {
        return open();
    }
    record::create(path, existing == Existing::Truncate, open)
}

/// Renames `from` to `to` (replacing it), durable after a [`sync_dir`] of the directory.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    if hooks() & HOOK_RECORD == 0 {
        return std::fs::rename(from, to);
    }
    record::rename(from, to, || std::fs::rename(from, to))
}

/// Removes the file `path`, durable after a [`sync_dir`] of its directory.
pub fn remove_file(path: &Path) -> io::Result<()> {
    if hooks() & HOOK_RECORD == 0 {
        return std::fs::remove_file(path);
    }
    record::unlink(path, || std::fs::remove_file(path))
}

/// Creates `dir` and any missing parents; each directory created is made durable in its
/// parent (a [`sync_dir`] of the parent at site `"mkdir.parent"`) before the next one.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        p = d.parent();
    }
    for d in missing.into_iter().rev() {
        let mkdir = || crate::perms::create_dir(d);
        let made = if hooks() & HOOK_RECORD == 0 {
            mkdir()
        } else {
            record::mkdir(d, mkdir)
        };
        match made {
            Ok(()) => {}
            // Another thread or process made it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(e),
        }
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent, "mkdir.parent")?;
    }
    Ok(())
}
