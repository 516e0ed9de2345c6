//! Creating files and directories: explicit modes, the store's group, and no links followed.
//!
//! Every file and directory the store creates, and every file written where a user asked
//! (`export`, `get --out`, a new key file), is made here:
//! - files are [`FILE_MODE`] (0640; secrets [`SECRET_MODE`], 0600) and directories
//!   [`DIR_MODE`] (0750), set with `fchmod`/`chmod` after creation so the umask can neither
//!   widen nor narrow them;
//! - a new directory keeps the set-group-id bit it inherits from its parent: a store created
//!   with a `group` has that bit on its root ([`give_dir_to_group`]), so every file and
//!   directory created below belongs to the group with no `chown` per file;
//! - a new file is opened with `O_CREAT|O_EXCL|O_NOFOLLOW`: it is never a link planted under
//!   its name and never something that was already there;
//! - a file written for a user lands under its final name through
//!   [`rename_no_replace`] from a temporary file with an unpredictable name
//!   ([`create_temp`]), so neither a planted link nor an existing file is written through or
//!   replaced.
//!
//! Files that already exist keep their modes: only what is created here is set.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Mode of every file the store creates: the owner reads and writes, the group reads.
pub const FILE_MODE: u32 = 0o640;
/// Mode of secrets (key files, the tokens file): the owner only.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of every directory the store creates (plus set-group-id when inherited).
pub const DIR_MODE: u32 = 0o750;
/// The set-group-id bit of a directory's mode: files created in it take its group.
const SETGID: u32 = 0o2000;
/// Suffix of the temporary files of user-named outputs.
pub const TEMP_SUFFIX: &str = ".footage-partial";
/// Random names tried before giving up on a temporary file: a collision of 64 random bits
/// means someone is guessing names, not bad luck.
pub(crate) const TEMP_TRIES: usize = 8;

/// Creates a new file at `path`, open for reading and writing, with exactly `mode`. Fails with
/// `AlreadyExists` if anything is at `path`, a symbolic link (even a dangling one) included.
pub fn create_new_mode(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if let Err(e) = file.set_permissions(Permissions::from_mode(mode)) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// [`create_new_mode`] with [`FILE_MODE`].
pub fn create_new(path: &Path) -> io::Result<File> {
    create_new_mode(path, FILE_MODE)
}

/// Opens the file at `path` for reading and writing, creating it with `mode` if it does not
/// exist. A symbolic link at `path` is refused (`ELOOP`), never followed.
pub fn open_or_create_mode(path: &Path, mode: u32) -> io::Result<File> {
    match create_new_mode(path, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
        r => r,
    }
}

/// [`open_or_create_mode`] with [`FILE_MODE`].
pub fn open_or_create(path: &Path) -> io::Result<File> {
    open_or_create_mode(path, FILE_MODE)
}

/// Creates a new file in place of a leftover temporary file at `path` (a crash may leave
/// one): whatever is there, a link included, is removed, not followed.
pub fn replace_temp(path: &Path, mode: u32) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create_new_mode(path, mode)
}

/// Creates the directory `path` (its parent must exist) with [`DIR_MODE`], keeping the
/// set-group-id bit a new directory inherits. Callers go through
/// [`crate::fsio::create_dir_all`], which makes missing parents and each new entry durable.
pub fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(DIR_MODE).create(path)?;
    set_dir_mode(path)
}

/// Sets a directory's permission bits to [`DIR_MODE`], keeping its set-group-id bit.
pub fn set_dir_mode(path: &Path) -> io::Result<()> {
    let setgid = std::fs::symlink_metadata(path)?.mode() & SETGID;
    std::fs::set_permissions(path, Permissions::from_mode(DIR_MODE | setgid))
}

/// The id of the group called `name`.
pub fn group_id(name: &str) -> Result<u32> {
    let bad = |what: String| Error::Group {
        group: name.to_string(),
        what,
    };
    let c = std::ffi::CString::new(name).map_err(|_| bad("a group name has no NUL".into()))?;
    let mut len = 16 * 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero `group` is a valid value for getgrnam_r to fill in.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf` is `len` bytes long.
        let rc =
            unsafe { libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), len, &mut found) };
        match rc {
            0 if found.is_null() => {
                return Err(bad(format!(
                    "no such group (create it: groupadd {name}; then add the user that runs \
                     footage: usermod -aG {name} USER)"
                )))
            }
            0 => return Ok(grp.gr_gid),
            libc::ERANGE if len < 1 << 20 => len *= 4,
            e => {
                return Err(bad(format!(
                    "cannot look it up: {}",
                    io::Error::from_raw_os_error(e)
                )))
            }
        }
    }
}

/// Gives directory `dir` to group `gid` (called `name`) and sets its set-group-id bit, so
/// that everything created in it from now on belongs to the group too. Does nothing when
/// that is already so.
pub fn give_dir_to_group(dir: &Path, name: &str, gid: u32) -> Result<()> {
    let m = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    let setgid = SETGID;
    if m.gid() == gid && m.mode() & setgid != 0 {
        return Ok(());
    }
    let refused = |e: io::Error| Error::Group {
        group: name.to_string(),
        what: format!(
            "cannot give {} to the group: {e} (the user running footage must own it and be \
             a member of group {name})",
            dir.display()
        ),
    };
    if m.gid() != gid {
        std::os::unix::fs::chown(dir, None, Some(gid)).map_err(refused)?;
    }
    std::fs::set_permissions(dir, Permissions::from_mode((m.mode() & 0o777) | setgid))
        .map_err(refused)?;
    // chmod quietly drops set-group-id for a group the caller is not in.
    let now = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if now.gid() != gid || now.mode() & setgid == 0 {
        return Err(refused(io::Error::from_raw_os_error(libc::EPERM)));
    }
    Ok(())
}

/// Renames `from` to `to` only if nothing is at `to`: an existing file or link (even a
/// dangling one) makes it fail with `AlreadyExists`, and is left as it is. Uses
/// `renameat2(RENAME_NOREPLACE)`, or a hard link and an unlink where the file system does
/// not support that.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let cstr = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL"))
        };
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: both are valid NUL-terminated paths.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {}
            _ => return Err(e),
        }
    }
    // link(2) never replaces its target and does not follow a link at it.
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}
