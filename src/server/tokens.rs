//! The access tokens file (`<store>/tokens.json`): who may use `footage serve`, and with which
//! role (`read`, `write`, `holds`, `ingest`). Used by `footage token add|remove|list|disable-auth` and by
//! the server.
//!
//! Invariants:
//! - a token is shown once, when it is made; the file keeps only the SHA-256 of each token;
//! - the file is replaced atomically (temporary file, fsync, rename, fsync of the store dir), so
//!   a reader sees the old list or the new one, never a mix; read-modify-write cycles hold an
//!   exclusive lock on `<store>/tokens.lock`, so two `footage token` commands never lose one
//!   another's change;
//! - a presented token is compared with every stored hash in constant time (no early exit), so
//!   response times tell nothing about which stored hash it came close to;
//! - a file that cannot be read or parsed is an error, never "no tokens" (fail closed);
//! - every add and remove is noted for the audit log before it returns (token_audit.rs).
//! - once a store has had a token it requires tokens ([`auth_required`]): the marker
//!   `<store>/tokens.required` is durable before the first token is, and only
//!   [`disable_auth`] (audited, with no token left) removes it, so a moved-away or emptied
//!   `tokens.json` shuts the server rather than opening it;
//! - no token bears the name of a built-in actor ([`is_reserved`]), so no token passes for the
//!   store, the system, the local operator or a bare uid in the audit log.

mod admin;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
pub use admin::{
    add, add_with_role, auth_required, disable_auth, ensure_marker, list, marker_path, remove,
};

/// File name of the tokens file in the store directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// Lock file taken by `footage token` while it changes the tokens file.
pub const TOKENS_LOCK: &str = "tokens.lock";
/// Version of the tokens file this build writes (version 1, with `read_only`, is still read).
pub const TOKENS_FORMAT_VERSION: u32 = 2;
/// The marker of a store that requires tokens (FORMAT.md §18).
pub const AUTH_MARKER: &str = "tokens.required";
/// The text of the marker file (it is only its presence that counts).
const AUTH_MARKER_TEXT: &str = "This store has had access tokens: `footage serve` refuses every \
request without a valid one, even if tokens.json is missing or empty.\n\
Turn authentication off only with `footage token disable-auth` (audited).\n";
/// Prefix of every token, so that secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "ftg_";

/// What a token may do. `read`, `write` and `holds` form a chain (each may do everything the
/// ones before it may); `ingest` stands apart: a dock's token, it may only create, continue,
/// query and terminate its own resumable uploads (`server/auth.rs` refuses it everything else).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, read metadata and tracks, watch video; no change.
    Read,
    /// Also categorize, tag and place legal holds. Default = `Write` (what `token add` makes).
    #[default]
    Write,
    /// Also release legal holds.
    Holds,
    /// Only its own uploads at `/api/uploads` (a dock): no search, no video, no change to
    /// stored segments, no other caller's upload.
    Ingest,
}

impl Role {
    /// Every role: the chain weakest first, then `ingest`.
    pub const ALL: [Role; 4] = [Role::Read, Role::Write, Role::Holds, Role::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Holds => "holds",
            Role::Ingest => "ingest",
        }
    }

    /// The role of a token of a version-1 file (`read_only` true or false).
    pub fn from_read_only(read_only: bool) -> Role {
        if read_only {
            Role::Read
        } else {
            Role::Write
        }
    }

    /// May change segments (labels, holds).
    pub fn may_change(self) -> bool {
        matches!(self, Role::Write | Role::Holds)
    }

    /// May release legal holds.
    pub fn may_release(self) -> bool {
        matches!(self, Role::Holds)
    }

    /// May create resumable uploads (and continue, query and terminate them: every upload
    /// for `write` and `holds`, only its own for `ingest`).
    pub fn may_upload(self) -> bool {
        matches!(self, Role::Write | Role::Holds | Role::Ingest)
    }

    /// May only touch its own uploads (a dock's token): every other endpoint is refused.
    pub fn uploads_only(self) -> bool {
        matches!(self, Role::Ingest)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use read, write, holds or ingest"))
    }
}

/// One stored token: its name, the SHA-256 of the secret, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    /// Lower-case hex SHA-256 of the whole token string (prefix included).
    pub sha256: String,
    pub role: Role,
    /// When the token was made (RFC 3339 UTC).
    pub created: String,
}

impl TokenEntry {
    /// True for a token that may change nothing.
    pub fn read_only(&self) -> bool {
        !self.role.may_change()
    }
}

#[derive(Debug, Serialize)]
struct TokensFile<'a> {
    format_version: u32,
    tokens: &'a [TokenEntry],
}

/// A token as read from a file of either version: version 1 has `read_only`, version 2 `role`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    sha256: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    read_only: Option<bool>,
    created: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format_version: u32,
    tokens: Vec<RawEntry>,
}

/// Names of the built-in actors of the audit log, which no token may take (compared without
/// regard to case): the handle without an actor, the server's actor without tokens, the
/// CLI's last resort, and the store's own entries. `uid:<anything>` is reserved too: the CLI
/// records a bare user id that way.
pub const RESERVED_NAMES: &[&str] = &[
    crate::store::SYSTEM_ACTOR,
    "local",
    "unknown",
    crate::audit::STORE_ACTOR,
];

/// Whether `name` is a built-in actor name that no token may take.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_NAMES.iter().any(|r| lower == *r) || lower.starts_with("uid:")
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    crate::meta::validate_id("token name", name)?;
    if is_reserved(name) {
        return Err(format!(
            "the token name {name:?} is reserved for a built-in actor of the audit log \
             (system, local, unknown, uid:*, {}): choose a person's or a system's own name",
            crate::audit::STORE_ACTOR
        ));
    }
    Ok(())
}

/// The tokens of a store, with their hashes decoded for checking.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    entries: Vec<TokenEntry>,
    hashes: Vec<[u8; 32]>,
}

/// Path of the tokens file of the store at `root`.
pub fn tokens_path(root: &Path) -> PathBuf {
    root.join(TOKENS_FILE)
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenSet {
    /// Reads the tokens file of the store at `root`; a missing file is an empty set.
    pub fn load(root: &Path) -> Result<TokenSet> {
        let path = tokens_path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenSet::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        TokenSet::parse(&text).map_err(|what| Error::Config {
            path: path.clone(),
            what,
        })
    }

    /// Parses the text of a tokens file (version 1 or 2). A reserved name is read (so that
    /// `token remove` can take it away) but such a token is refused by the server.
    pub fn parse(text: &str) -> std::result::Result<TokenSet, String> {
        let file: RawFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let v = file.format_version;
        if v != 1 && v != TOKENS_FORMAT_VERSION {
            return Err(format!(
                "format_version {v} is not 1 or {TOKENS_FORMAT_VERSION}: use a newer footage"
            ));
        }
        let mut set = TokenSet::default();
        for raw in file.tokens {
            let role = match (v, raw.role, raw.read_only) {
                (1, None, Some(ro)) => Role::from_read_only(ro),
                (2, Some(role), None) => role,
                _ => {
                    return Err(format!(
                        "token {:?}: a version {v} file gives {}",
                        raw.name,
                        if v == 1 {
                            "read_only (true or false) and no role"
                        } else {
                            "role (read, write, holds or ingest) and no read_only"
                        }
                    ))
                }
            };
            let e = TokenEntry {
                name: raw.name,
                sha256: raw.sha256,
                role,
                created: raw.created,
            };
            crate::meta::validate_id("token name", &e.name)?;
            let hash = crate::util::parse_sha256(&e.sha256)
                .ok_or_else(|| format!("token {:?}: sha256 is not 64 hex digits", e.name))?;
            if set.get(&e.name).is_some() {
                return Err(format!("token {:?} is listed twice", e.name));
            }
            set.hashes.push(hash);
            set.entries.push(e);
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[TokenEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&TokenEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entry whose hash matches `token`. Every stored hash is compared, in constant time.
    pub fn check(&self, token: &str) -> Option<&TokenEntry> {
        let h = sha256(token);
        let mut found: Option<usize> = None;
        for (i, stored) in self.hashes.iter().enumerate() {
            if bool::from(stored.ct_eq(&h)) {
                found = Some(i);
            }
        }
        found.and_then(|i| self.entries.get(i))
    }

    /// Whether the token named `name` still exists with the hash `sha256` (hex).
    pub fn still_valid(&self, name: &str, sha256: &str) -> bool {
        self.get(name).is_some_and(|e| {
            bool::from(e.sha256.as_bytes().ct_eq(sha256.as_bytes())) && e.name == name
        })
    }

    pub(crate) fn to_text(&self) -> Result<String> {
        let file = TokensFile {
            format_version: TOKENS_FORMAT_VERSION,
            tokens: &self.entries,
        };
        serde_json::to_string_pretty(&file)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::Invalid(format!("cannot encode the tokens file: {e}")))
    }
}

#[cfg(test)]
mod tests;
