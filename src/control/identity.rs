//! Who the user behind a command is, as the CLI and the control channel both resolve it: the
//! OS user name of a uid, the actor an audit entry records, the check of an `--actor` name,
//! and the one-line text of an error (what `error: ...` prints, and what a control client is
//! sent).
//!
//! Invariants: identity comes from the OS (the user database, `SO_PEERCRED` uids), never
//! from text a client wrote unless that text is a valid, unreserved actor name; every
//! function here is total.

/// Parses `--actor` for clap: an id, and not the name of a built-in actor.
pub fn actor_arg(s: &str) -> Result<String, String> {
    let s = crate::search::label_arg(s)?;
    if crate::server::tokens::is_reserved(&s) {
        return Err(format!(
            "{s:?} is reserved for a built-in actor of the audit log (system, local, unknown, \
             uid:*, {})",
            crate::audit::STORE_ACTOR
        ));
    }
    Ok(s)
}

/// The text of an error as the `error: ...` line shows it: the outermost message, plus inner
/// ones that add something, on one line.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for m in e.chain().map(|c| c.to_string()) {
        if !line.contains(&m) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&m);
        }
    }
    line.replace('\n', " ")
}

/// The name the user database gives `uid`, if it is a plain name (printable ASCII, no spaces,
/// at most 64 bytes).
pub fn os_user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain data (integers and pointers), for which all zeros is valid.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes only into `pwd` and into `buf` (of the length given), and sets
    // `found` to `&pwd` or null; both outlive the call and every read below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_str()
        .ok()?;
    (!name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| name.to_string())
}

/// `audit_actor` (src/cli) from its parts (see `actor_of`). A named actor that is not a valid one
/// (only a control client can send one) counts as none.
pub fn audit_actor_of(named: Option<&str>, user: Option<&str>, uid: u32, os: &str) -> String {
    if let Some(name) = named.filter(|n| actor_arg(n).is_ok()) {
        return format!("{name} ({os})");
    }
    if let Some(u) = user {
        if u.len() <= 64 && crate::store::check_actor(u).is_ok() {
            return format!("{u} ({os})");
        }
    }
    format!("uid:{uid} ({os})")
}
