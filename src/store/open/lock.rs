//! Opening, step 1: the root and the locks. A store is created only in `Mode::Create`; the
//! exclusive flocks on `LOCK` and on the store directory make this process the one owner, and
//! the mode is checked again under them.
//!
//! Invariant: nothing is created in a directory without `footage.toml` unless the mode asks
//! for a new store, and an unknown group fails before anything is created.

use std::fs;
use std::path::Path;

use super::Mode;
use crate::error::{Error, IoContext, Result};

/// The two flocks that make this process the store's owner, held as long as the store is open.
pub(super) struct Locks {
    pub lock: fs::File,
    pub dir_lock: fs::File,
}

/// Before any lock: an existing store must have its `footage.toml`; a new one gets its root
/// (0750, given to the store's group).
pub(super) fn prepare_root(
    root: &Path,
    opts: &crate::config::StoreOptions,
    mode: Mode,
) -> Result<()> {
    let config_path = root.join(crate::config::CONFIG_FILE);
    match mode {
        // Checked before anything is created (the LOCK file included), and again under the
        // lock below.
        Mode::Existing if !config_path.exists() => {
            return Err(Error::NoStore {
                path: root.to_path_buf(),
            })
        }
        Mode::Existing => {}
        Mode::Create => {
            // An unknown group fails before anything is created.
            let group = match &opts.group {
                Some(name) => Some((name, crate::perms::group_id(name)?)),
                None => None,
            };
            crate::fsio::create_dir_all(root).at(root)?;
            // The store owns its root: 0750 even if the directory was there before (unless
            // someone else owns that directory: then its owner decides).
            match crate::perms::set_dir_mode(root) {
                Err(e) if e.raw_os_error() != Some(libc::EPERM) => return Err(Error::io(root, e)),
                _ => {}
            }
            if let Some((name, gid)) = group {
                crate::perms::give_dir_to_group(root, name, gid)?;
            }
        }
    }
    Ok(())
}

/// Takes the flock on `LOCK` (created if needed) and the one on the store directory.
pub(super) fn take_locks(root: &Path) -> Result<Locks> {
    let lock_path = root.join("LOCK");
    let lock = crate::perms::open_or_create(&lock_path).at(&lock_path)?;
    take_lock(&lock, root, &lock_path)?;
    // `LOCK` can be deleted from under its owner (an operator "clearing a stale lock"), and
    // a new file would lock fine: so the owner also locks the store directory itself, which
    // cannot be replaced while the store is in it. A second writer fails on one or the other.
    let dir_lock = fs::File::open(root).at(root)?;
    take_lock(&dir_lock, root, root)?;
    Ok(Locks { lock, dir_lock })
}

/// Under the locks: the store exists (or, for `Mode::Create`, does not yet).
pub(super) fn check_mode(root: &Path, mode: Mode) -> Result<()> {
    let config_path = root.join(crate::config::CONFIG_FILE);
    match (mode, config_path.exists()) {
        (Mode::Existing, false) => Err(Error::NoStore {
            path: root.to_path_buf(),
        }),
        (Mode::Create, true) => Err(Error::StoreExists {
            path: root.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// How long an open waits for a lock that is held before it reports [`Error::Locked`].
/// A store this process just closed can stay locked for an instant: a child process started
/// meanwhile by another thread (any `Command::spawn`) holds copies of every descriptor from
/// its fork until its exec, and an flock is released only when the last copy closes. A store
/// held by another process stays held: the wait only turns that instant into no error.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes the exclusive flock on `file` (naming `path` in errors), waiting at most
/// [`LOCK_WAIT`] for a holder to let go.
fn take_lock(file: &fs::File, root: &Path, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: root.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
}
