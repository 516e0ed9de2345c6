//! Changing a store's tokens (`footage token`): new secrets, adding and removing tokens under
//! `tokens.lock`, the atomic replace of `tokens.json`, and the `tokens.required` marker that
//! keeps a store that has had tokens from ever being served without one (FORMAT.md §18).
//!
//! Invariants: every change is a read-modify-write under `tokens.lock` and an atomic replace,
//! so a crash leaves the old file or the new one; a secret is shown once and only its SHA-256
//! is stored; the marker is written before the first token and removed only by
//! `disable_auth`, which is audited.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::TryRngCore;

use super::{
    check_name, sha256, tokens_path, Role, TokenEntry, TokenSet, AUTH_MARKER, AUTH_MARKER_TEXT,
    TOKENS_LOCK, TOKEN_PREFIX,
};
use crate::error::{Error, IoContext, Result};
use crate::server::token_audit;

/// A new random token: the prefix and 64 hex digits (256 bits from the OS's random source).
fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Invalid(format!("no random numbers from the OS: {e}")))?;
    Ok(format!("{TOKEN_PREFIX}{}", crate::hex(&bytes)))
}

/// Holds `<store>/tokens.lock` for a read-modify-write of the tokens file.
struct TokensLock {
    _file: File,
}

fn lock(root: &Path) -> Result<TokensLock> {
    let path = root.join(TOKENS_LOCK);
    let file = crate::perms::open_or_create_mode(&path, crate::perms::SECRET_MODE).at(&path)?;
    file.lock().at(&path)?;
    Ok(TokensLock { _file: file })
}

/// Replaces the tokens file atomically.
fn write(root: &Path, set: &TokenSet) -> Result<()> {
    use crate::fsio::atomic::{Place, TempFile};
    let path = tokens_path(root);
    let text = set.to_text()?;
    let mut tmp = TempFile::beside(&path, crate::perms::SECRET_MODE).at(&path)?;
    tmp.write_all(text.as_bytes()).at(tmp.path())?;
    tmp.commit(
        &path,
        Place::Replace,
        "tokens.file",
        "tokens.before_rename",
        "tokens.dir",
    )
    .at(&path)
}

fn require_store(root: &Path) -> Result<()> {
    if root.join(crate::CONFIG_FILE).is_file() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "no footage store at {} (create one first, e.g. with `footage --store {} stats`)",
            root.display(),
            root.display()
        )))
    }
}

/// Path of the marker of a store that requires tokens.
pub fn marker_path(root: &Path) -> PathBuf {
    root.join(AUTH_MARKER)
}

/// Whether the store at `root` requires tokens: it has the marker, or a `tokens.json` (even an
/// empty one: its last token was removed). An error (say, a marker that cannot be checked)
/// must be taken as "required".
pub fn auth_required(root: &Path) -> Result<bool> {
    for path in [marker_path(root), tokens_path(root)] {
        match std::fs::symlink_metadata(&path) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(false)
}

/// Writes the marker (durably) if it is missing.
fn mark_required(root: &Path) -> Result<()> {
    let path = marker_path(root);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::log::write_atomic(&path, AUTH_MARKER_TEXT.as_bytes())
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Writes the marker if the store has tokens but no marker (a store from before the marker).
pub fn ensure_marker(root: &Path, set: &TokenSet) -> Result<()> {
    if set.is_empty() {
        Ok(())
    } else {
        mark_required(root)
    }
}

/// Makes a read-write token called `name` (see [`add_with_role`]).
pub fn add(root: &Path, name: &str, read_only: bool) -> Result<String> {
    add_with_role(root, name, Role::from_read_only(read_only))
}

/// Makes a token called `name` with `role`; returns the secret, which is stored nowhere. The
/// first token also makes the store require tokens from then on (the marker is durable first).
pub fn add_with_role(root: &Path, name: &str, role: Role) -> Result<String> {
    check_name(name).map_err(Error::Invalid)?;
    require_store(root)?;
    let _lock = lock(root)?;
    let mut set = TokenSet::load(root)?;
    mark_required(root)?;
    if set.get(name).is_some() {
        return Err(Error::Invalid(format!(
            "a token called {name:?} exists; remove it first (`footage token remove {name}`)"
        )));
    }
    let secret = new_secret()?;
    set.hashes.push(sha256(&secret));
    set.entries.push(TokenEntry {
        name: name.to_string(),
        sha256: crate::hex(&sha256(&secret)),
        role,
        created: crate::input::time::format_time(crate::now_us()),
    });
    write(root, &set)?;
    token_audit::note(root, "token-add", name, Some(role))?;
    Ok(secret)
}

/// Removes the token called `name`.
pub fn remove(root: &Path, name: &str) -> Result<()> {
    require_store(root)?;
    let _lock = lock(root)?;
    let mut set = TokenSet::load(root)?;
    ensure_marker(root, &set)?;
    let Some(i) = set.entries.iter().position(|e| e.name == name) else {
        return Err(Error::NotFound(format!("no token called {name:?}")));
    };
    let role = set.entries.remove(i).role;
    set.hashes.remove(i);
    write(root, &set)?;
    token_audit::note(root, "token-remove", name, Some(role))
}

/// The tokens of the store at `root` (names and rights; the hashes stay in the file).
pub fn list(root: &Path) -> Result<TokenSet> {
    require_store(root)?;
    TokenSet::load(root)
}

/// Turns authentication off for the store of `store`: refused while any token exists (remove
/// them first), recorded durably in the audit log as `auth-disabled` by `actor`, then the marker
/// and the empty `tokens.json` are removed. Returns false if the store did not require tokens.
/// The caller holds the store open, so no `footage serve` runs meanwhile.
pub fn disable_auth(store: &crate::Store, actor: &str) -> Result<bool> {
    let root = store.root();
    let _lock = lock(root)?;
    let set = TokenSet::load(root)?;
    if !set.is_empty() {
        let names: Vec<&str> = set.entries().iter().map(|e| e.name.as_str()).collect();
        return Err(Error::Invalid(format!(
            "{} token(s) still exist ({}): remove each with `footage token remove NAME` before \
             turning authentication off",
            names.len(),
            names.join(", ")
        )));
    }
    if !auth_required(root)? {
        return Ok(false);
    }
    let tokens_file = tokens_path(root);
    store.audit(
        actor,
        crate::audit::Action::AuthDisabled,
        None,
        serde_json::json!({
            "marker": marker_path(root).is_file(),
            "tokens_file": if tokens_file.exists() { "empty" } else { "missing" },
        }),
    )?;
    for path in [tokens_file, marker_path(root)] {
        match crate::fsio::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    crate::log::sync_dir(root, "tokens.disable_auth.dir")?;
    Ok(true)
}
