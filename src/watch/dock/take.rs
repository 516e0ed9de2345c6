//! Taking one video: open it and its sidecar without following links, parse the sidecar,
//! stream the video into a new segment, and commit it only if the file did not change while
//! it was read.
//!
//! Invariants: nothing is committed unless the bytes read are exactly the settled size and
//! the mtime is unchanged after the read; a stop during the read drops the writer (dead chunks,
//! no segment); every error is classed as failed or transient here (see the parent module).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{mtime_ns, Dock, Look, Outcome, Waiting, MAX_SIDECAR_BYTES};
use crate::error::Error;
use crate::input::{mp4_duration_us, parse_sidecar, InputError};
use crate::meta::SegmentMeta;

impl Dock {
    /// Reads the sidecar, ingests the video, and commits it if it did not change meanwhile.
    pub(super) fn take(
        &mut self,
        name: &OsStr,
        video: &Path,
        side_path: &Path,
        look: Look,
        stop: &AtomicBool,
    ) -> Outcome {
        let file = match open_nofollow(video) {
            Ok(f) => f,
            Err(e) => return open_error("the video", &e),
        };
        let text = match read_sidecar(side_path) {
            Ok(Ok(t)) => t,
            Ok(Err(why)) => return Outcome::Failed(why),
            Err(e) => return open_error("its sidecar", &e),
        };
        let entry = match parse_sidecar(&text, &self.dir, name) {
            Ok(e) => e,
            Err(InputError::Invalid { what }) => {
                return Outcome::Failed(format!("sidecar: {what}"))
            }
            Err(e) => return Outcome::Transient(format!("sidecar: {e}")),
        };
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() == look.size && mtime_ns(&m) == look.mtime_ns => {}
            Ok(m) if !m.is_file() => return Outcome::Failed("not a regular file".into()),
            Ok(_) => {
                self.seen.remove(name);
                return Outcome::Wait(Waiting::Settling);
            }
            Err(e) => return Outcome::Transient(format!("cannot read it: {e}")),
        }
        let end_us = match entry.end_us {
            Some(e) => e,
            None => {
                // Through the open descriptor: the file read is the one checked above.
                use std::os::fd::AsRawFd;
                let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                match mp4_duration_us(&fd_path) {
                    Ok(Some(d)) => entry.start_us.saturating_add(d),
                    Ok(None) => {
                        return Outcome::Failed(
                            "no end in the sidecar and no duration in the video's MP4 header: \
                             add end to the sidecar"
                                .into(),
                        )
                    }
                    Err(InputError::Invalid { what }) => {
                        return Outcome::Failed(format!("the video's MP4 header: {what}"))
                    }
                    Err(e) => return Outcome::Transient(format!("cannot read the video: {e}")),
                }
            }
        };
        let meta = SegmentMeta {
            officer: entry.officer,
            device: entry.device,
            start_us: entry.start_us,
            end_us,
            gps: entry.gps,
            cases: entry.cases,
            tags: entry.tags,
            categories: entry.categories,
        };
        let mut w = match self.store.begin_segment(meta) {
            Ok(w) => w,
            Err(e) => return store_error(&e),
        };
        let mut reader = StopReader { file: &file, stop };
        let copied = match w.copy_from(&mut reader) {
            Ok(n) => n,
            Err(_) if stop.load(Ordering::SeqCst) => return Outcome::Wait(Waiting::Nothing),
            Err(Error::Io { source, .. }) => {
                return Outcome::Transient(format!("cannot read the video: {source}"))
            }
            Err(e) => return store_error(&e),
        };
        match file.metadata() {
            Ok(m) if m.len() == copied && copied == look.size && mtime_ns(&m) == look.mtime_ns => {}
            Ok(_) => {
                // Changed while read: dropping the writer leaves only dead chunks.
                self.seen.remove(name);
                return Outcome::Wait(Waiting::Settling);
            }
            Err(e) => return Outcome::Transient(format!("cannot read it: {e}")),
        }
        match w.commit() {
            Ok(c) => {
                crate::fail::point("watch.before_move");
                Outcome::Done(c)
            }
            Err(e) => store_error(&e),
        }
    }
}

/// Opens a file for reading without following a link at its name (nor blocking on a FIFO).
fn open_nofollow(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Reads a sidecar (bounded, not through a link); `Ok(Err(why))` when it cannot be valid.
fn read_sidecar(path: &Path) -> io::Result<std::result::Result<String, String>> {
    let f = open_nofollow(path)?;
    if !f.metadata()?.is_file() {
        return Ok(Err("its sidecar is not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SIDECAR_BYTES {
        return Ok(Err(format!(
            "its sidecar is larger than {} MiB",
            MAX_SIDECAR_BYTES >> 20
        )));
    }
    Ok(String::from_utf8(bytes).map_err(|e| {
        format!(
            "sidecar is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    }))
}

/// An error opening or reading a file of the folder: a link or a permission problem cannot
/// pass by itself; anything else may.
fn open_error(what: &str, e: &io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ELOOP) => Outcome::Failed(format!(
            "{what} is a symbolic link (links are never followed)"
        )),
        Some(libc::EACCES | libc::EPERM) => Outcome::Failed(format!(
            "cannot read {what}: {e} (the service's user must be able to read what docks write)"
        )),
        Some(libc::ENOENT) => Outcome::Wait(Waiting::Nothing),
        _ => Outcome::Transient(format!("cannot read {what}: {e}")),
    }
}

/// A store error: invalid metadata fails the video, anything else may pass.
fn store_error(e: &Error) -> Outcome {
    match e {
        Error::Invalid(what) => Outcome::Failed(format!("refused by the store: {what}")),
        other => Outcome::Transient(format!("store: {other}")),
    }
}

/// Reads a file until the watcher is asked to stop.
struct StopReader<'a> {
    file: &'a File,
    stop: &'a AtomicBool,
}

impl Read for StopReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("the service is stopping"));
        }
        let mut f = self.file;
        f.read(buf)
    }
}
