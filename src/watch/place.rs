//! Moving a dock video and its sidecar out of the folder: into `done/` with a result file, or
//! into `failed/` with an error file.
//!
//! A video named `clip.mp4` is filed under the first free *slot* of the target directory:
//! `clip.mp4`, then `clip-1.mp4`, `clip-2.mp4`, ... (a slot is free when no video is there);
//! beside it go `<slot>.json` (the sidecar) and the note `<slot>.result.json` or
//! `<slot>.error`.
//!
//! Order of one move, so that a crash between any two steps is repaired by the next pass:
//! 1. the note is written to a temporary file, fsynced, and renamed to its name (replacing a
//!    note left by a crash in this free slot);
//! 2. the video is renamed into the slot (never over anything: `RENAME_NOREPLACE`);
//! 3. the sidecar is renamed beside it (no-replace);
//! 4. the target directory, then the dock folder, are fsynced.
//!
//! A crash before 2 leaves the video and sidecar in the folder: ingested again (a duplicate),
//! the same slot is chosen and its note replaced. A crash between 2 and 3 leaves the
//! sidecar alone in the folder: [`adopt_orphan`] moves it beside its video (the slot below
//! the first free one whose video is there, whose sidecar is not, and whose note is not older
//! than the sidecar). Nothing is ever replaced in `done/` or `failed/` but a note of a free
//! slot.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::fsio;
use crate::perms;

/// Subdirectory of ingested videos.
pub const DONE_DIR: &str = "done";
/// Subdirectory of videos that cannot be ingested.
pub const FAILED_DIR: &str = "failed";
/// Suffix of the result file beside a done video (`clip.mp4.result.json`).
pub const RESULT_SUFFIX: &str = ".result.json";
/// Suffix of the error file beside a failed video (`clip.mp4.error`).
pub const ERROR_SUFFIX: &str = ".error";
/// Suffix of a sidecar.
pub const SIDECAR_SUFFIX: &str = ".json";
/// `version` of the result file (docs/FORMAT.md, "Dock folder result file").
pub const RESULT_VERSION: u32 = 1;
/// Slots tried for one name before giving up: ten thousand deliveries of one file name
/// without anyone clearing `done/` is a dock gone wrong, not a station.
const MAX_SLOTS: u32 = 10_000;

/// `name` with `suffix` appended (bytes, so odd names stay as they are).
pub(crate) fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut v = name.as_bytes().to_vec();
    v.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(v)
}

/// The name of slot `k` for `name`: `name` itself, else `stem-k.ext` (`clip-2.mp4`).
fn slot(name: &OsStr, k: u32) -> OsString {
    if k == 0 {
        return name.to_os_string();
    }
    let b = name.as_bytes();
    // The extension starts at the last dot that is not the first byte.
    let dot = b.iter().rposition(|&c| c == b'.').filter(|&i| i > 0);
    let mut v = Vec::with_capacity(b.len() + 8);
    match dot {
        Some(i) => {
            v.extend_from_slice(b.get(..i).unwrap_or_default());
            v.extend_from_slice(format!("-{k}").as_bytes());
            v.extend_from_slice(b.get(i..).unwrap_or_default());
        }
        None => {
            v.extend_from_slice(b);
            v.extend_from_slice(format!("-{k}").as_bytes());
        }
    }
    OsString::from_vec(v)
}

/// Whether anything (a link included) is at `path`.
fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The first slot of `name` in `sub` with no video.
fn free_slot(sub: &Path, name: &OsStr) -> io::Result<(u32, OsString)> {
    for k in 0..MAX_SLOTS {
        let s = slot(name, k);
        if !exists(&sub.join(&s))? {
            return Ok((k, s));
        }
    }
    Err(io::Error::other(format!(
        "{MAX_SLOTS} files named {:?} are already in {}: clear it",
        name.to_string_lossy(),
        sub.display()
    )))
}

/// Writes `bytes` to `sub/name` through a fsynced temporary file renamed over it.
fn write_note(sub: &Path, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    use crate::fsio::atomic::{Place, TempFile};
    let mut tmp = TempFile::create(sub, "note", perms::FILE_MODE)?;
    tmp.write_all(bytes)?;
    tmp.commit(
        &sub.join(name),
        Place::Replace,
        "watch.note",
        "watch.note.before_rename",
        "watch.note.dir",
    )
}

/// Files the video `name` of `dir` (and its sidecar, if there is one) under a free slot of
/// `dir/sub` with the note `<slot><note_suffix>`; returns the slot's name. See the module
/// header for the order of the steps.
pub(crate) fn file(
    dir: &Path,
    sub: &str,
    name: &OsStr,
    note_suffix: &str,
    note: &[u8],
) -> io::Result<OsString> {
    let subdir = dir.join(sub);
    check_subdir(&subdir)?;
    let video = dir.join(name);
    let sidecar = dir.join(with_suffix(name, SIDECAR_SUFFIX));
    let slot_name = loop {
        let (_, s) = free_slot(&subdir, name)?;
        write_note(&subdir, &with_suffix(&s, note_suffix), note)?;
        match perms::rename_no_replace(&video, &subdir.join(&s)) {
            Ok(()) => break s,
            // Someone filled the slot meanwhile: take the next one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    crate::fail::point("watch.between_moves");
    if exists(&sidecar)? {
        perms::rename_no_replace(
            &sidecar,
            &subdir.join(with_suffix(&slot_name, SIDECAR_SUFFIX)),
        )?;
    }
    fsio::sync_dir(&subdir, "watch.moved")?;
    fsio::sync_dir(dir, "watch.moved")?;
    Ok(slot_name)
}

/// Refuses a `done/` or `failed/` that is not a real directory: whoever can write the folder
/// could replace it with a link to move files out of it. (A swap between this check and the
/// renames is not stopped: see DESIGN.md, "The dock folder".)
pub(crate) fn check_subdir(subdir: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(subdir)?;
    if m.file_type().is_symlink() || !m.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a link or a file was put there): move it away",
            subdir.display()
        )));
    }
    Ok(())
}

/// A sidecar `name.json` alone in `dir` (its video `name` is gone): if a crash stopped a move
/// between the video and its sidecar, moves the sidecar beside its video and returns true.
/// A sidecar newer than the slot's note is a new delivery written before its video (against
/// the dock contract) and is left alone.
pub(crate) fn adopt_orphan(dir: &Path, name: &OsStr) -> io::Result<bool> {
    let sidecar = dir.join(with_suffix(name, SIDECAR_SUFFIX));
    let side_meta = match std::fs::symlink_metadata(&sidecar) {
        Ok(m) if m.file_type().is_file() => m,
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let side_mtime = side_meta.modified()?;
    for (sub, suffix) in [(DONE_DIR, RESULT_SUFFIX), (FAILED_DIR, ERROR_SUFFIX)] {
        let subdir = dir.join(sub);
        check_subdir(&subdir)?;
        let (first_free, _) = free_slot(&subdir, name)?;
        for k in (0..first_free).rev() {
            let s = slot(name, k);
            let note = subdir.join(with_suffix(&s, suffix));
            let target = subdir.join(with_suffix(&s, SIDECAR_SUFFIX));
            if exists(&target)? {
                continue;
            }
            let note_mtime = match std::fs::symlink_metadata(&note) {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if side_mtime > note_mtime {
                continue;
            }
            perms::rename_no_replace(&sidecar, &target)?;
            fsio::sync_dir(&subdir, "watch.moved")?;
            fsio::sync_dir(dir, "watch.moved")?;
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_the_extension() {
        let n = OsStr::new("clip.mp4");
        assert_eq!(slot(n, 0), "clip.mp4");
        assert_eq!(slot(n, 2), "clip-2.mp4");
        assert_eq!(slot(OsStr::new("raw"), 1), "raw-1");
        assert_eq!(slot(OsStr::new(".x"), 1), ".x-1");
    }
}
