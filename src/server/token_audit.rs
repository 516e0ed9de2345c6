//! Token changes in the audit log, with the OS user who made them.
//!
//! `footage token add|remove` must work while `footage serve` holds the store (and so its
//! audit log), so a token change is first written to `<store>/tokens.audit-pending` (one JSON
//! line each, fsynced, before the command reports success) and then copied into the audit log
//! (`token-add` / `token-remove`, durable, actor = the OS user) by whoever holds the store:
//! the `footage token` command itself when no server runs, else the running server (at once
//! when it sees the tokens file change, within [`DRAIN_EVERY`] otherwise, and when it starts
//! and stops).
//!
//! Invariants:
//! - a token change is never acknowledged before its pending line is durable, and the pending
//!   file is emptied only after every line in it is durable in the audit log: a change is
//!   recorded at least once (a crash between the two can record it twice, never zero times);
//! - appends and copies hold an exclusive lock on the pending file itself, so a copy never
//!   empties a line it has not recorded;
//! - a damaged line is not dropped: it is recorded as `token-journal-damaged` with its text.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use crate::audit::Action;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::Store;

/// File name of the token changes not yet copied into the audit log.
pub const PENDING_FILE: &str = "tokens.audit-pending";
/// How often a running server looks for token changes to copy.
pub const DRAIN_EVERY: Duration = Duration::from_secs(1);
/// Most bytes of a damaged line kept in its audit entry.
const DAMAGED_LINE_KEPT: usize = 1024;

/// One token change waiting to be recorded.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// `token-add` or `token-remove`.
    action: String,
    name: String,
    #[serde(default)]
    read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// The OS user (`$USER`, else `$LOGNAME`, else `uid:<n>`): the actor of the entry.
    os_user: String,
    /// The real user id of the process that made the change (what `$USER` cannot fake).
    uid: u32,
    /// When the change was made (RFC 3339 UTC).
    time: String,
}

/// The OS user of this process: its name as an audit actor and its user id.
pub fn os_identity() -> (String, u32) {
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| crate::store::check_actor(u).is_ok())
        .unwrap_or_else(|| format!("uid:{uid}"));
    (name, uid)
}

fn open_locked(root: &Path, create: bool) -> Result<Option<File>> {
    let path = root.join(PENDING_FILE);
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(0o600)
        .open(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::Error::io(&path, e)),
    };
    file.lock().at(&path)?;
    Ok(Some(file))
}

/// Notes a token change made by this process (durable before it returns).
pub(crate) fn note(
    root: &Path,
    action: &str,
    name: &str,
    role: Option<super::tokens::Role>,
) -> Result<()> {
    let (os_user, uid) = os_identity();
    let p = Pending {
        action: action.to_string(),
        name: name.to_string(),
        read_only: role.map(|r| !r.may_change()),
        role: role.map(|r| r.as_str().to_string()),
        os_user,
        uid,
        time: crate::input::time::format_time(crate::now_us()),
    };
    let mut line = serde_json::to_string(&p)
        .map_err(|e| crate::Error::Invalid(format!("cannot encode a token change: {e}")))?;
    line.push('\n');
    let path = root.join(PENDING_FILE);
    let Some(mut f) = open_locked(root, true)? else {
        return Ok(());
    };
    f.write_all(line.as_bytes()).at(&path)?;
    crate::fsio::sync_data(&f, "tokens.audit_pending").at(&path)?;
    crate::log::sync_dir(root, "tokens.audit_pending.dir")
}

/// Copies the pending token changes of `store` into its audit log (durably), then empties
/// the pending file. Returns how many were copied.
pub fn drain(store: &Store) -> Result<usize> {
    let root = store.root();
    let path = root.join(PENDING_FILE);
    let Some(mut f) = open_locked(root, false)? else {
        return Ok(0);
    };
    let mut text = String::new();
    f.seek(SeekFrom::Start(0)).at(&path)?;
    f.read_to_string(&mut text).at(&path)?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Pending>(line) {
            Ok(p) if crate::store::check_actor(&p.os_user).is_ok() => {
                let details = serde_json::json!({
                    "name": p.name,
                    "read_only": p.read_only,
                    "role": p.role,
                    "os_user": p.os_user,
                    "uid": p.uid,
                    "time": p.time,
                });
                store.audit(&p.os_user, Action::parse(&p.action), None, details)?;
            }
            _ => {
                let kept: String = line.chars().take(DAMAGED_LINE_KEPT).collect();
                store.audit(
                    crate::store::SYSTEM_ACTOR,
                    Action::TokenJournalDamaged,
                    None,
                    serde_json::json!({ "file": PENDING_FILE, "line": kept }),
                )?;
            }
        }
        n += 1;
    }
    if !text.is_empty() {
        f.set_len(0).at(&path)?;
        f.sync_all().at(&path)?;
    }
    Ok(n)
}

/// [`drain`], with a failure logged (the lines stay pending for the next try).
pub fn drain_logged(store: &Store) -> std::result::Result<(), super::ApiError> {
    if let Err(e) = drain(store) {
        tracing::error!(
            target: "footage::server",
            error = %e,
            "cannot copy token changes into the audit log"
        );
        return Err(e.into());
    }
    Ok(())
}

/// Whether token changes wait in the pending file (a `stat`, no lock).
pub fn any_pending(root: &Path) -> bool {
    std::fs::metadata(root.join(PENDING_FILE)).is_ok_and(|m| m.len() > 0)
}

/// Runs for the server's life: copies pending token changes every `every`.
pub async fn drain_every(store: Store, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if any_pending(store.root()) {
            let s = store.clone();
            let _ = super::blocking(move || drain_logged(&s)).await;
        }
    }
}
