//! The store's configuration file `footage.toml`, written with defaults when a store is
//! created and read on every open.
//!
//! Invariants: `store_id` never changes after creation (volumes carry it and are refused by
//! another store); `chunk_size` is a multiple of 4096 between 64 KiB and 16 MiB; a
//! `volume_size` below 4 chunks is refused. Data dirs may be added later; a data dir that is
//! removed from the list makes its segments unavailable, never deleted. Encryption is chosen
//! at creation and never changes: an encrypted store has `format_version = 2`, `encryption =
//! "aes-256-gcm"` and the `key_id` of its key (never the key), so builds that do not know
//! encryption refuse it instead of handing out ciphertext. The clock is chosen at creation
//! and never changes either: `clock = "simulated"` marks a test or demo store whose retention
//! may be run at any pretend time; a file without `clock` is a real-clock store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod cache;
mod map;
pub mod service;
pub use cache::CacheConfig;
pub use map::MapConfig;

/// Name of the store's configuration file in its root directory.
pub const CONFIG_FILE: &str = "footage.toml";
pub const CONFIG_VERSION: u32 = 1;
/// `format_version` of an encrypted store (chunk payloads sealed, docs/FORMAT.md §20).
pub const CONFIG_VERSION_ENCRYPTED: u32 = 2;
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
pub const DEFAULT_VOLUME_SIZE: u64 = 4 << 30;
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 10_000;
/// `clock` of a store whose retention may decide by any time (tests, the demo).
pub const CLOCK_SIMULATED: &str = "simulated";
/// `clock` of an ordinary store (also what a file without the key means).
pub const CLOCK_REAL: &str = "real";

/// A store's configuration, as `footage.toml` holds it (written at creation; docs/FORMAT.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Version of this file's layout.
    pub format_version: u32,
    /// Random id written into every volume (32 hex digits).
    pub store_id: String,
    /// Directories that hold volumes, one per disk; relative paths are inside the store.
    pub data_dirs: Vec<PathBuf>,
    /// A volume is sealed once it reaches this many bytes.
    pub volume_size: u64,
    /// Bytes per chunk record (header + payload), a multiple of 4096.
    pub chunk_size: u32,
    /// A checkpoint is written after this many commits.
    pub checkpoint_every: u64,
    /// `"aes-256-gcm"` for an encrypted store; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// Id of the store key (32 hex digits, [`crate::crypt::Key::id`]); absent when not
    /// encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Group that owns the store's files and directories (each directory has the
    /// set-group-id bit, so what is created in it joins the group); absent: the group of the
    /// user who created the store. The user that runs footage must be a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `"simulated"` for a store created with a simulated clock (retention may be applied at
    /// any time); absent (or `"real"`) for an ordinary store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
    /// The station's tile server for the review page's map (`[map]`); absent: the page draws
    /// a degree grid and requests nothing outside the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<MapConfig>,
    /// What `footage serve` runs in the background (`[service]`, src/config/service.rs);
    /// absent: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<service::ServiceConfig>,
    /// The read cache of evicted footage (`[cache]`, src/config/cache.rs); absent: no cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
}

/// Settings for a new store; ignored when the store already exists.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directories that will hold volumes, one per disk (default: `<store>/data`).
    pub data_dirs: Vec<PathBuf>,
    /// Size at which a volume is sealed and a new one begun, bytes (default 4 GiB).
    pub volume_size: u64,
    /// Size of one chunk record's payload, bytes (default 1 MiB): the unit of CRC checks and of
    /// reads.
    pub chunk_size: u32,
    /// Commits between two catalog checkpoints (default 10 000): fewer makes opening faster, more
    /// makes ingest cheaper.
    pub checkpoint_every: u64,
    /// Store id (32 hex digits) for a new store; random when None. Set only to rebuild a
    /// lost store from its cloud copies.
    pub store_id: Option<String>,
    /// The store key, and with it the choice of encryption, which cannot contradict itself:
    /// `Some` creates a new store encrypted (AES-256-GCM) under this key, `None` creates it
    /// in plaintext. On every later open an encrypted store needs its key here (a different
    /// key is refused by its id) and a plaintext store ignores one. Default `None`.
    pub key: Option<crate::crypt::Key>,
    /// Group to give the new store's files and directories to (`init --group`). Default
    /// none: the creating user's group.
    pub group: Option<String>,
    /// Create the store with a simulated clock: `retention_apply` then accepts a time later
    /// than the real clock, and the store says so for ever (footage.toml, `stats`, `info`,
    /// custody records, retention audit entries). For tests and demos. Default false.
    pub simulated_clock: bool,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            data_dirs: vec![PathBuf::from("data")],
            volume_size: DEFAULT_VOLUME_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            store_id: None,
            key: None,
            group: None,
            simulated_clock: false,
        }
    }
}

/// The 16 bytes of a store id written as 32 hex digits.
pub(crate) fn parse_store_id(s: &str) -> Option<[u8; 16]> {
    // from_str_radix alone would accept a sign ("+f"): only hex digits are an id.
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Config {
    /// The configuration of a new store: encrypted exactly when `opts.key` is given.
    pub fn new(opts: &StoreOptions) -> Result<Config> {
        let id: [u8; 16] = rand::random();
        let key_id = opts.key.as_ref().map(|k| k.id());
        Ok(Config {
            format_version: if key_id.is_some() {
                CONFIG_VERSION_ENCRYPTED
            } else {
                CONFIG_VERSION
            },
            encryption: key_id.as_ref().map(|_| crate::crypt::ALGORITHM.to_string()),
            key_id,
            store_id: opts
                .store_id
                .clone()
                .unwrap_or_else(|| id.iter().map(|b| format!("{b:02x}")).collect()),
            data_dirs: opts.data_dirs.clone(),
            volume_size: opts.volume_size,
            chunk_size: opts.chunk_size,
            checkpoint_every: opts.checkpoint_every,
            group: opts.group.clone(),
            clock: opts.simulated_clock.then(|| CLOCK_SIMULATED.to_string()),
            map: None,
            service: None,
            cache: None,
        })
    }

    /// Whether the store was created with a simulated clock.
    pub fn simulated_clock(&self) -> bool {
        self.clock.as_deref() == Some(CLOCK_SIMULATED)
    }

    /// `"simulated"` or `"real"`: what `stats`, `info`, custody records and retention audit
    /// entries show.
    pub fn clock_name(&self) -> &'static str {
        if self.simulated_clock() {
            CLOCK_SIMULATED
        } else {
            CLOCK_REAL
        }
    }

    /// Whether chunk payloads (and cloud copies) are sealed with the store key.
    pub fn encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Checks every value against its allowed range; the error names the key (`path` is where the
    /// file is, for the message).
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |what: String| Error::Config {
            path: path.to_path_buf(),
            what,
        };
        if self.format_version != CONFIG_VERSION && self.format_version != CONFIG_VERSION_ENCRYPTED
        {
            return Err(Error::UnsupportedVersion {
                what: "configuration",
                path: path.to_path_buf(),
                found: self.format_version,
                supported: CONFIG_VERSION_ENCRYPTED,
            });
        }
        let encrypted = self.format_version == CONFIG_VERSION_ENCRYPTED;
        match (&self.encryption, &self.key_id) {
            (None, None) if !encrypted => {}
            (Some(alg), Some(id)) if encrypted => {
                if alg != crate::crypt::ALGORITHM {
                    return Err(bad(format!(
                        "encryption {alg:?} is not supported (only \"{}\")",
                        crate::crypt::ALGORITHM
                    )));
                }
                if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("key_id must be 32 hex digits".into()));
                }
            }
            _ => {
                return Err(bad(format!(
                    "format_version {} needs encryption and key_id {}",
                    self.format_version,
                    if encrypted { "set" } else { "absent" }
                )))
            }
        }
        if let Some(c) = &self.clock {
            if c != CLOCK_SIMULATED && c != CLOCK_REAL {
                return Err(bad(format!(
                    "clock {c:?} must be \"{CLOCK_SIMULATED}\" or \"{CLOCK_REAL}\""
                )));
            }
        }
        self.store_id_bytes()
            .ok_or_else(|| bad("store_id must be 32 hex digits".into()))?;
        if self.data_dirs.is_empty() {
            return Err(bad("data_dirs must list at least one directory".into()));
        }
        if self.data_dirs.len() > usize::from(u16::MAX) {
            return Err(bad("too many data_dirs".into()));
        }
        if !(64 * 1024..=16 << 20).contains(&self.chunk_size)
            || !self.chunk_size.is_multiple_of(4096)
        {
            return Err(bad(format!(
                "chunk_size {} must be a multiple of 4096 between 65536 and 16777216",
                self.chunk_size
            )));
        }
        if self.volume_size < 4 * u64::from(self.chunk_size) {
            return Err(bad(format!(
                "volume_size {} must be at least 4 chunks ({})",
                self.volume_size,
                4 * u64::from(self.chunk_size)
            )));
        }
        if self.volume_size > (1u64 << 32) * 4096 {
            return Err(bad("volume_size must be below 16 TiB".into()));
        }
        if let Some(g) = &self.group {
            // What groupadd accepts, so the name cannot smuggle anything into a message.
            let ok = !g.is_empty()
                && g.len() <= 32
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                && !g.starts_with('-');
            if !ok {
                return Err(bad(format!(
                    "group {g:?} is not a group name (letters, digits, '_', '-', '.'; at most 32)"
                )));
            }
        }
        if let Some(m) = &self.map {
            m.validate().map_err(bad)?;
        }
        if self.checkpoint_every == 0 {
            return Err(bad("checkpoint_every must be at least 1".into()));
        }
        if let Some(service) = &self.service {
            service.settings().map_err(bad)?;
        }
        if let Some(cache) = &self.cache {
            cache.validate().map_err(bad)?;
        }
        Ok(())
    }

    /// The store id as 16 bytes, if it is 32 hex digits.
    pub fn store_id_bytes(&self) -> Option<[u8; 16]> {
        parse_store_id(&self.store_id)
    }

    /// Reads the configuration of the store at `root`, or creates it from `opts`.
    pub fn load_or_create(root: &Path, opts: &StoreOptions) -> Result<Config> {
        let path = root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let cfg: Config = toml::from_str(&text).map_err(|e| Error::Config {
                    path: path.clone(),
                    what: e.to_string(),
                })?;
                cfg.validate(&path)?;
                Ok(cfg)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cfg = Config::new(opts)?;
                cfg.validate(&path)?;
                let text = toml::to_string_pretty(&cfg).map_err(|e| Error::Config {
                    path: path.clone(),
                    what: e.to_string(),
                })?;
                crate::log::write_atomic(
                    &path,
                    format!("# footage store configuration (see README.md)\n{text}").as_bytes(),
                )?;
                Ok(cfg)
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Absolute path of data dir `i`.
    pub fn data_dir(&self, root: &Path, i: usize) -> Option<PathBuf> {
        self.data_dirs.get(i).map(|d| {
            if d.is_absolute() {
                d.clone()
            } else {
                root.join(d)
            }
        })
    }
}
