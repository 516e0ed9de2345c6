//! Who is on the other end of a control connection, and whether they may use it.
//!
//! The kernel's `SO_PEERCRED` (uid, gid, pid of the peer when it connected) is the only source
//! of identity: nothing a client writes changes it.
//!
//! The rule ([`check`]), the second gate after the socket's mode 0660: a peer is accepted if
//! its uid is the service's (effective) uid or root, or its gid is the store directory's group,
//! or the user database lists the peer's user as a member of that group (`getgrouplist`).
//! The socket's mode already required the connecting process to hold the group (or be the
//! owner) at connect time; the database check keeps the rule about the *user*, not a pid
//! that `/proc` could show reused by another process.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The peer credentials of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

impl Peer {
    /// The credentials the kernel recorded for the process at the other end of `stream`.
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        // SAFETY: ucred is plain data, for which all zeros is valid.
        let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `cred`, which outlives the call.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                std::ptr::addr_of_mut!(cred).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Peer {
            uid: cred.uid,
            gid: cred.gid,
            pid: cred.pid,
        })
    }

    /// The peer as the audit log names an OS identity: `os:uid=N user=NAME` (the same form as
    /// a local command's, src/cli/mod.rs).
    pub fn os_identity(&self) -> String {
        let mut s = format!("os:uid={}", self.uid);
        if let Some(name) = crate::control::identity::os_user_name(self.uid) {
            s.push_str(&format!(" user={name}"));
        }
        s
    }
}

/// Whether `peer` may use the channel of a service running as `service_uid` over a store whose
/// directory belongs to `store_gid`; the refusal says why.
pub fn check(peer: &Peer, service_uid: u32, store_gid: u32) -> Result<(), String> {
    if peer.uid == 0 || peer.uid == service_uid || peer.gid == store_gid {
        return Ok(());
    }
    if let Some(name) = crate::control::identity::os_user_name(peer.uid) {
        if member_of(&name, peer.gid, store_gid) {
            return Ok(());
        }
    }
    Err(format!(
        "the control channel refuses uid {} (gid {}): only the service's user (uid \
         {service_uid}), root and members of the store's group (gid {store_gid}) may use it",
        peer.uid, peer.gid
    ))
}

/// Whether the user database lists `user` (primary group `primary`) in group `gid`.
fn member_of(user: &str, primary: u32, gid: u32) -> bool {
    let Ok(c) = std::ffi::CString::new(user) else {
        return false;
    };
    let mut n: libc::c_int = 64;
    for _ in 0..8 {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: `groups` has room for `count` gids; getgrouplist writes at most that many and
        // sets `count` to the number it found (or needs).
        let rc =
            unsafe { libc::getgrouplist(c.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            return groups.iter().take(count.max(0) as usize).any(|g| *g == gid);
        }
        if count <= n {
            // Not a "buffer too small" answer.
            return false;
        }
        n = count;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_root_and_the_group_are_accepted_others_refused() {
        let p = |uid, gid| Peer { uid, gid, pid: 1 };
        assert!(check(&p(1000, 1000), 1000, 2000).is_ok());
        assert!(check(&p(0, 0), 1000, 2000).is_ok());
        assert!(check(&p(1001, 2000), 1000, 2000).is_ok());
        // uid 4294967294 is nobody's: no database entry, no group membership.
        let refused = check(&p(4_294_967_294, 4_294_967_294), 1000, 2000).unwrap_err();
        assert!(refused.contains("refuses uid 4294967294"), "{refused}");
    }

    #[test]
    fn peer_credentials_are_this_process_for_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        // SAFETY: these calls cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!(
            (peer.uid, peer.gid, peer.pid),
            (uid, gid, std::process::id() as i32)
        );
        assert!(peer.os_identity().starts_with(&format!("os:uid={uid}")));
    }
}
