//! The control socket file: `<store>/control.sock`.
//!
//! Invariants:
//! - the socket appears under its name only once it has mode [`SOCKET_MODE`] (0660) and the
//!   store directory's group: it is bound under a temporary name, given its mode and group,
//!   set listening, and then renamed over `control.sock` (an atomic replace, which is also how a
//!   stale socket left by a killed service is replaced);
//! - a path too long for `sun_path` (108 bytes with its NUL) is reached through
//!   `/proc/self/fd/N/control.sock`, N a descriptor of the store directory, on both sides; only
//!   when `/proc` is missing too is it an error, and that error says so;
//! - the service removes the socket at shutdown only if the file under the name is still the
//!   one it bound (same device and inode), never a successor's.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::ControlError;

/// Name of the socket in the store directory.
pub const SOCKET_FILE: &str = "control.sock";
/// Mode of the socket: the service's user and the store's group may connect (connecting needs
/// write permission); nobody else.
pub const SOCKET_MODE: u32 = 0o660;
/// Longest path `sun_path` holds (108 bytes on Linux, one of them the NUL).
const SUN_PATH_MAX: usize = 107;
/// Connections the kernel queues before `accept`.
const BACKLOG: libc::c_int = 64;

/// A path to something in the store directory that fits in `sun_path`: the plain path, or
/// one through a descriptor of the directory (kept open as long as the path is used).
pub struct SocketPath {
    path: PathBuf,
    _dir: Option<File>,
}

impl SocketPath {
    /// The path of `name` in the store directory `root`.
    pub fn new(root: &Path, name: &str) -> Result<SocketPath, ControlError> {
        let plain = root.join(name);
        if plain.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(SocketPath {
                path: plain,
                _dir: None,
            });
        }
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(root)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
        if !Path::new("/proc/self/fd").is_dir() {
            return Err(ControlError::Refused(format!(
                "the control socket path {} is longer than the {SUN_PATH_MAX} bytes a Unix \
                 socket address holds, and /proc is not mounted to reach it by a short path: \
                 move the store to a shorter path",
                plain.display()
            )));
        }
        Ok(SocketPath {
            path,
            _dir: Some(dir),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The socket the service listens on; [`BoundSocket::remove`] takes it away at shutdown.
pub struct BoundSocket {
    /// `<store>/control.sock`, as given (for messages).
    pub shown: PathBuf,
    at: SocketPath,
    dev: u64,
    ino: u64,
}

/// Binds the service's socket in `root`. Returns the listener, the socket, and whether a
/// stale socket (nothing answering) was replaced. Another service answering on it is an
/// error (it cannot be: the store's lock is held by the caller; but then the socket is not
/// taken away from it).
pub fn bind(root: &Path) -> Result<(UnixListener, BoundSocket, bool), ControlError> {
    let shown = root.join(SOCKET_FILE);
    let at = SocketPath::new(root, SOCKET_FILE)?;
    let stale = match std::fs::symlink_metadata(at.path()) {
        Ok(_) => match UnixStream::connect(at.path()) {
            Ok(_) => {
                return Err(ControlError::Refused(format!(
                    "another footage service answers on {}",
                    shown.display()
                )))
            }
            Err(_) => true,
        },
        Err(_) => false,
    };
    let tmp_name = format!("{SOCKET_FILE}.{}.tmp", std::process::id());
    let tmp = SocketPath::new(root, &tmp_name)?;
    match std::fs::remove_file(tmp.path()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let listener = bind_tmp(tmp.path(), root)?;
    if let Err(e) = std::fs::rename(tmp.path(), at.path()) {
        let _ = std::fs::remove_file(tmp.path());
        return Err(e.into());
    }
    let meta = std::fs::symlink_metadata(at.path())?;
    Ok((
        listener,
        BoundSocket {
            shown,
            at,
            dev: meta.dev(),
            ino: meta.ino(),
        },
        stale,
    ))
}

/// socket, bind, chmod 0660, chown to the directory's group, listen: no connection can be
/// queued before the mode is set.
fn bind_tmp(tmp: &Path, root: &Path) -> Result<UnixListener, ControlError> {
    // SAFETY: socket() takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let (addr, len) = sockaddr(tmp)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes that outlives the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let set = (|| -> std::io::Result<()> {
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        let want = std::fs::metadata(root)?.gid();
        if std::fs::symlink_metadata(tmp)?.gid() != want {
            std::os::unix::fs::lchown(tmp, None, Some(want))?;
        }
        // SAFETY: listen() takes no pointers.
        if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })();
    if let Err(e) = set {
        let _ = std::fs::remove_file(tmp);
        return Err(e.into());
    }
    Ok(UnixListener::from(fd))
}

/// A `sockaddr_un` for `path` (which [`SocketPath`] keeps short enough).
fn sockaddr(path: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t), ControlError> {
    // SAFETY: sockaddr_un is plain data, for which all zeros is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > SUN_PATH_MAX || bytes.contains(&0) {
        return Err(ControlError::Refused(format!(
            "{} cannot be a Unix socket address",
            path.display()
        )));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

impl BoundSocket {
    /// Removes the socket file if it is still the one bound here.
    pub fn remove(&self) {
        if let Ok(m) = std::fs::symlink_metadata(self.at.path()) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(self.at.path());
            }
        }
    }
}

/// Connects to the service of the store in `root`.
pub fn connect(root: &Path) -> Result<UnixStream, ControlError> {
    let shown = root.join(SOCKET_FILE);
    let at = SocketPath::new(root, SOCKET_FILE)?;
    UnixStream::connect(at.path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ControlError::NoService {
                path: shown.display().to_string(),
            }
        }
        std::io::ErrorKind::PermissionDenied => ControlError::Refused(format!(
            "permission denied on {}: the control channel is for the store's owner and group \
             only (ask an administrator to add you to the group of {}, then log in again)",
            shown.display(),
            root.display()
        )),
        _ => ControlError::Io(e),
    })
}
