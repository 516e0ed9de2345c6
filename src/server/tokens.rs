//! The access tokens file (`<store>/tokens.json`): who may use `footage serve`, and whether
//! they may only read. Used by `footage token add|remove|list` and by the server.
//!
//! Invariants:
//! - a token is shown once, when it is made; the file keeps only the SHA-256 of each token;
//! - the file is replaced atomically (temporary file, fsync, rename, fsync of the store dir), so
//!   a reader sees the old list or the new one, never a mix; read-modify-write cycles hold an
//!   exclusive lock on `<store>/tokens.lock`, so two `footage token` commands never lose one
//!   another's change;
//! - a presented token is compared with every stored hash in constant time (no early exit), so
//!   response times tell nothing about which stored hash it came close to;
//! - a file that cannot be read or parsed is an error, never "no tokens" (fail closed).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, IoContext, Result};

/// File name of the tokens file in the store directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// Lock file taken by `footage token` while it changes the tokens file.
pub const TOKENS_LOCK: &str = "tokens.lock";
/// Version of the tokens file this build reads and writes.
pub const TOKENS_FORMAT_VERSION: u32 = 1;
/// Prefix of every token, so that secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "ftg_";

/// One stored token: its name, the SHA-256 of the secret, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    /// Lower-case hex SHA-256 of the whole token string (prefix included).
    pub sha256: String,
    pub read_only: bool,
    /// When the token was made (RFC 3339 UTC).
    pub created: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    format_version: u32,
    tokens: Vec<TokenEntry>,
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

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
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

    /// Parses the text of a tokens file.
    pub fn parse(text: &str) -> std::result::Result<TokenSet, String> {
        let file: TokensFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format_version != TOKENS_FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not {TOKENS_FORMAT_VERSION}: use a newer footage",
                file.format_version
            ));
        }
        let mut set = TokenSet::default();
        for e in file.tokens {
            crate::meta::validate_id("token name", &e.name)?;
            let hash = decode_hex32(&e.sha256)
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
            tokens: self.entries.clone(),
        };
        serde_json::to_string_pretty(&file)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::Invalid(format!("cannot encode the tokens file: {e}")))
    }
}

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
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .at(&path)?;
    file.lock().at(&path)?;
    Ok(TokensLock { _file: file })
}

/// Replaces the tokens file atomically.
fn write(root: &Path, set: &TokenSet) -> Result<()> {
    let path = tokens_path(root);
    let tmp = root.join(format!("{TOKENS_FILE}.tmp"));
    let text = set.to_text()?;
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(text.as_bytes()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, &path).at(&path)?;
    crate::log::sync_dir(root, "tokens.dir")
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

/// Makes a token called `name`; returns the secret, which is stored nowhere.
pub fn add(root: &Path, name: &str, read_only: bool) -> Result<String> {
    crate::meta::validate_id("token name", name).map_err(Error::Invalid)?;
    require_store(root)?;
    let _lock = lock(root)?;
    let mut set = TokenSet::load(root)?;
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
        read_only,
        created: crate::input::time::format_time(crate::now_us()),
    });
    write(root, &set)?;
    Ok(secret)
}

/// Removes the token called `name`.
pub fn remove(root: &Path, name: &str) -> Result<()> {
    require_store(root)?;
    let _lock = lock(root)?;
    let mut set = TokenSet::load(root)?;
    let Some(i) = set.entries.iter().position(|e| e.name == name) else {
        return Err(Error::NotFound(format!("no token called {name:?}")));
    };
    set.entries.remove(i);
    set.hashes.remove(i);
    write(root, &set)
}

/// The tokens of the store at `root` (names and rights; the hashes stay in the file).
pub fn list(root: &Path) -> Result<TokenSet> {
    require_store(root)?;
    TokenSet::load(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_check_remove() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::CONFIG_FILE), "").unwrap();
        let a = add(dir.path(), "sgt.jones", false).unwrap();
        let b = add(dir.path(), "viewer", true).unwrap();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 4 + 64);
        assert!(add(dir.path(), "viewer", true).is_err());
        let set = TokenSet::load(dir.path()).unwrap();
        assert_eq!(set.check(&a).map(|e| e.name.as_str()), Some("sgt.jones"));
        assert_eq!(set.check(&b).map(|e| e.read_only), Some(true));
        assert!(set.check("ftg_nope").is_none());
        let text = std::fs::read_to_string(tokens_path(dir.path())).unwrap();
        assert!(!text.contains(&a[4..]), "the secret itself is never stored");
        remove(dir.path(), "sgt.jones").unwrap();
        let set = TokenSet::load(dir.path()).unwrap();
        assert!(set.check(&a).is_none());
        assert_eq!(set.len(), 1);
        assert!(remove(dir.path(), "sgt.jones").is_err());
    }

    #[test]
    fn damaged_file_is_an_error() {
        assert!(TokenSet::parse("{").is_err());
        assert!(TokenSet::parse(r#"{"format_version":2,"tokens":[]}"#).is_err());
        assert!(TokenSet::parse(
            r#"{"format_version":1,"tokens":[{"name":"a","sha256":"zz","read_only":false,"created":""}]}"#
        )
        .is_err());
        assert!(TokenSet::parse(r#"{"format_version":1,"tokens":[]}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn no_store_no_tokens() {
        let dir = tempfile::tempdir().unwrap();
        assert!(add(dir.path(), "x", false).is_err());
    }
}
