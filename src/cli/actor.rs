//! Who a command acts as: the actor recorded in the audit log for a change (named with
//! `--actor`, else the OS user) and for a read or a query, always with the OS identity beside
//! it (`alice (os:uid=1000 user=bob)`), which the user cannot choose.
//!
//! Invariants: the part in brackets comes from the OS (uid, euid, the user database), never
//! from the environment; an actor for a change is a valid id or the command fails.

use crate::control::identity::{actor_arg, audit_actor_of, os_user_name};

/// This process's `$USER` (else `$LOGNAME`): the actor when none is named.
pub(crate) fn env_user() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
}

/// Who runs this process, as the OS knows it: `os:uid=N user=NAME` (the name from the user
/// database, not from `$USER`, which anyone can set; `euid=N` too when it differs).
pub(crate) fn os_identity() -> String {
    // SAFETY: getuid and geteuid cannot fail and touch no memory.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    let mut s = format!("os:uid={uid}");
    if euid != uid {
        s.push_str(&format!(" euid={euid}"));
    }
    if let Some(name) = os_user_name(uid) {
        s.push_str(&format!(" user={name}"));
    }
    s
}

/// A claimed actor with the OS identity beside it: `alice (os:uid=1000 user=bob)`. The claim
/// is what the user says; the part in brackets is what the OS says, and cannot be chosen.
pub(crate) fn with_os_identity(claimed: &str) -> String {
    format!("{claimed} ({})", os_identity())
}

/// The actor of changes: the one named on the command line (checked by clap), else the OS
/// user, with the OS identity beside it.
pub(crate) fn actor(named: &Option<String>) -> anyhow::Result<String> {
    actor_of(named.as_deref(), env_user().as_deref(), &os_identity())
}

/// [`actor`] from its parts: the named actor, the user name of the environment, and the OS
/// identity (this process's, or a control client's from its peer credentials).
pub(crate) fn actor_of(
    named: Option<&str>,
    user: Option<&str>,
    os: &str,
) -> anyhow::Result<String> {
    if let Some(name) = named {
        actor_arg(name).map_err(|e| anyhow::anyhow!("--actor: {e}"))?;
        return Ok(format!("{name} ({os})"));
    }
    let name = user.unwrap_or("unknown");
    crate::meta::validate_id("actor", name).map_err(|e| {
        anyhow::anyhow!("the OS user name cannot name the actor: {e}; pass --actor NAME")
    })?;
    Ok(format!("{name} ({os})"))
}

/// The actor recorded for ingests, reads, exports and queries: `--actor`, else the OS user
/// as it is (any name without control characters, at most 64 bytes), else the numeric user
/// id; always with the OS identity beside it. Unlike changes, these never fail because of an
/// odd OS user name.
pub(crate) fn audit_actor(named: &Option<String>) -> String {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    audit_actor_of(named.as_deref(), env_user().as_deref(), uid, &os_identity())
}
