//! Power-loss simulation for tests (doc-hidden, re-exported as `footage::power`): records
//! every durable-write operation the I/O layer makes under one directory, and builds from the
//! record the directory a power cut at any point would leave: what was synced, plus a random
//! subset of what was not.
//!
//! ```no_run
//! use footage::power;
//! # let dir = std::path::Path::new("/tmp/x");
//! power::start(dir);                 // snapshot of `dir` (taken as durable), then record
//! // ... run a workload; after each acknowledged step:
//! power::mark("segment 1");
//! let rec = power::stop();
//! rec.image(rec.events.len(), Some(7), std::path::Path::new("/tmp/img")).unwrap();
//! ```
//!
//! The crash model (what a power cut keeps), for a cut after the first `cut` events:
//! - file data: every write, hole punch and length change of a file made before its last
//!   fsync/fdatasync (before the cut) is kept; of the later ones each is kept or lost
//!   independently (applied in order), and a kept write may be torn at [`SECTOR`] boundaries
//!   (each 4 KiB piece kept or not): sectors are atomic, nothing smaller is assumed;
//! - directories: a creation, rename or unlink in a directory is kept if a later fsync of
//!   that directory came before the cut; of the later ones a random prefix (per directory,
//!   in order, as a journaling file system commits them) is kept. A file's fsync does not
//!   make its name durable, and a directory's fsync covers only its own entries;
//! - a file whose name is lost is lost whole; a directory whose entry is lost takes its
//!   files with it.
//!
//! With no seed only what was made durable is kept (the harshest cut): a test that removes
//! a sync (`skip_sync`) finds the loss there deterministically.
//!
//! Invariants: while nothing is recorded or skipped (every production run) the I/O layer
//! pays one relaxed atomic load; while recording, each routed call runs under the recorder's
//! lock, so the log's order is the order the calls took effect in, across threads.

mod image;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::{HOOKS, HOOK_RECORD, HOOK_SKIP};

/// The unit a device writes atomically: a torn write keeps or loses whole 4 KiB pieces.
pub const SECTOR: u64 = 4096;

/// One recorded operation. Files are named by a recorder-assigned id (inode numbers are
/// reused), paths are relative to the recorded directory.
#[derive(Debug, Clone)]
pub enum Event {
    Write {
        file: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    Punch {
        file: u64,
        offset: u64,
        len: u64,
    },
    SetLen {
        file: u64,
        len: u64,
    },
    /// fsync or fdatasync of a file.
    Sync {
        file: u64,
        site: &'static str,
    },
    /// A new, empty file named `path`.
    Create {
        path: PathBuf,
        file: u64,
    },
    Mkdir {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        file: Option<u64>,
    },
    Unlink {
        path: PathBuf,
    },
    /// fsync of a directory.
    SyncDir {
        path: PathBuf,
        site: &'static str,
    },
    /// A test's note: the step named here was acknowledged.
    Mark(String),
    /// A sync at `site` that [`skip_sync`] switched off (it made nothing durable).
    Skipped {
        site: &'static str,
    },
}

/// What was recorded: the directory when recording started, and every event since.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<(PathBuf, u64, Vec<u8>)>,
    pub events: Vec<Event>,
}

struct Recorder {
    root: PathBuf,
    /// Inode number -> recorder id, for the files under `root`.
    ids: HashMap<u64, u64>,
    next_id: u64,
    rec: Recording,
}

static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);
static SKIPPED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Starts recording the operations on files under `root`; what `root` holds now is taken
/// as durable. Replaces any recording under way.
pub fn start(root: &Path) {
    let mut r = Recorder {
        root: root.to_path_buf(),
        ids: HashMap::new(),
        next_id: 1,
        rec: Recording::default(),
    };
    snapshot(&mut r, root, Path::new(""));
    *RECORDER.lock() = Some(r);
    HOOKS.fetch_or(HOOK_RECORD, Ordering::Relaxed);
}

fn snapshot(r: &mut Recorder, dir: &Path, rel: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let (path, rel) = (ent.path(), rel.join(ent.file_name()));
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if m.is_dir() {
            r.rec.dirs.push(rel.clone());
            snapshot(r, &path, &rel);
        } else if m.is_file() {
            let id = r.next_id;
            r.next_id += 1;
            r.ids.insert(m.ino(), id);
            r.rec
                .files
                .push((rel, id, std::fs::read(&path).unwrap_or_default()));
        }
    }
}

/// Stops recording; returns the record.
pub fn stop() -> Recording {
    HOOKS.fetch_and(!HOOK_RECORD, Ordering::Relaxed);
    RECORDER.lock().take().map(|r| r.rec).unwrap_or_default()
}

/// Notes that the step `label` was acknowledged (its cut points follow it).
pub fn mark(label: impl Into<String>) {
    if let Some(r) = RECORDER.lock().as_mut() {
        r.rec.events.push(Event::Mark(label.into()));
    }
}

/// Makes every sync at `site` do nothing (returning `Ok`), as an engine without that fsync
/// would: a power-loss test then shows what the sync protects.
pub fn skip_sync(site: &'static str) {
    SKIPPED.lock().push(site);
    HOOKS.fetch_or(HOOK_SKIP, Ordering::Relaxed);
}

/// Undoes every [`skip_sync`].
pub fn clear_skips() {
    HOOKS.fetch_and(!HOOK_SKIP, Ordering::Relaxed);
    SKIPPED.lock().clear();
}

/// Whether the sync at `site` is switched off (noted in the recording if so).
pub(crate) fn skipped(site: &'static str) -> bool {
    if HOOKS.load(Ordering::Relaxed) & HOOK_SKIP == 0 || !SKIPPED.lock().contains(&site) {
        return false;
    }
    if let Some(r) = RECORDER.lock().as_mut() {
        r.rec.events.push(Event::Skipped { site });
    }
    true
}

impl Recorder {
    fn rel(&self, path: &Path) -> Option<PathBuf> {
        path.strip_prefix(&self.root).ok().map(Path::to_path_buf)
    }

    fn id_of(&self, file: &File) -> Option<u64> {
        self.ids.get(&file.metadata().ok()?.ino()).copied()
    }

    fn new_id(&mut self, ino: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(ino, id);
        id
    }
}

/// Runs `op` under the recorder's lock and, if it succeeded while a recording runs, records
/// the event `event` makes of it (none for a file or path outside the recorded tree).
fn after(
    op: impl FnOnce() -> io::Result<()>,
    event: impl FnOnce(&Recorder) -> Option<Event>,
) -> io::Result<()> {
    let mut guard = RECORDER.lock();
    let r = op();
    if let (Some(rec), Ok(())) = (guard.as_mut(), &r) {
        if let Some(e) = event(rec) {
            rec.rec.events.push(e);
        }
    }
    r
}

/// Runs `op` (a write of `buf` at `offset`) and records the bytes it reports written.
pub(crate) fn write_at(
    file: &File,
    offset: u64,
    buf: &[u8],
    op: impl FnOnce(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut guard = RECORDER.lock();
    let r = op(buf);
    if let (Some(rec), Ok(n)) = (guard.as_mut(), &r) {
        if let Some(id) = rec.id_of(file) {
            rec.rec.events.push(Event::Write {
                file: id,
                offset,
                bytes: buf.get(..*n).unwrap_or_default().to_vec(),
            });
        }
    }
    r
}

pub(crate) fn punch(
    file: &File,
    offset: u64,
    len: u64,
    op: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::Punch {
            file: rec.id_of(file)?,
            offset,
            len,
        })
    })
}

pub(crate) fn set_len(
    file: &File,
    len: u64,
    op: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::SetLen {
            file: rec.id_of(file)?,
            len,
        })
    })
}

pub(crate) fn sync(
    file: &File,
    site: &'static str,
    op: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::Sync {
            file: rec.id_of(file)?,
            site,
        })
    })
}

pub(crate) fn sync_dir(
    dir: &Path,
    site: &'static str,
    op: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::SyncDir {
            path: rec.rel(dir)?,
            site,
        })
    })
}

pub(crate) fn create(
    path: &Path,
    truncate: bool,
    op: impl FnOnce() -> io::Result<File>,
) -> io::Result<File> {
    let mut guard = RECORDER.lock();
    let existed = std::fs::symlink_metadata(path).ok();
    let f = op()?;
    if let Some(rec) = guard.as_mut() {
        if let (Some(rel), Ok(m)) = (rec.rel(path), f.metadata()) {
            match existed {
                None => {
                    let id = rec.new_id(m.ino());
                    rec.rec.events.push(Event::Create {
                        path: rel,
                        file: id,
                    });
                }
                Some(_) if truncate => {
                    if let Some(&id) = rec.ids.get(&m.ino()) {
                        rec.rec.events.push(Event::SetLen { file: id, len: 0 });
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok(f)
}

pub(crate) fn rename(
    from: &Path,
    to: &Path,
    op: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let ino = std::fs::symlink_metadata(from).ok().map(|m| m.ino());
    after(op, |rec| {
        Some(Event::Rename {
            from: rec.rel(from)?,
            to: rec.rel(to)?,
            file: ino.and_then(|i| rec.ids.get(&i).copied()),
        })
    })
}

pub(crate) fn unlink(path: &Path, op: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::Unlink {
            path: rec.rel(path)?,
        })
    })
}

pub(crate) fn mkdir(path: &Path, op: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    after(op, |rec| {
        Some(Event::Mkdir {
            path: rec.rel(path)?,
        })
    })
}
