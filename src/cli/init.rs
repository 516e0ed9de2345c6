//! `footage init`: creates a store with chosen settings (encrypted with `--encrypt`), and
//! the loading of the store key for every command (`--key-file`, `FOOTAGE_KEY`).
//!
//! Invariants: a store that already exists is never changed by `init` (it fails instead);
//! the key itself is never printed or written anywhere, only its id.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::print_json;
use crate::{Key, StoreOptions};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Encrypt chunk payloads and cloud copies with AES-256-GCM under the store key
    /// (--key-file or FOOTAGE_KEY); chosen now, for the life of the store
    #[arg(long)]
    pub encrypt: bool,
    /// Write a new random key (64 hex digits, mode 0600) to this file and use it; the file
    /// must not exist
    #[arg(long, value_name = "PATH", requires = "encrypt")]
    pub new_key_file: Option<PathBuf>,
    /// Create a test or demo store with a simulated clock: `retention apply --now` then
    /// accepts a time later than the real clock. Shown for ever in footage.toml, stats, info,
    /// custody records and retention audit entries
    #[arg(long)]
    pub simulated_clock: bool,
    /// Bytes per chunk record, a multiple of 4096 from 65536 to 16777216
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u32>,
    /// Give the store's files (0640) and directories (0750, set-group-id) to this group, e.g.
    /// `footage`; the user that runs footage must be a member (default: your own group)
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
}

#[derive(Serialize)]
struct Created {
    store: String,
    store_id: String,
    encryption: Option<String>,
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    clock: &'static str,
}

/// The store key from `--key-file PATH`, else from `FOOTAGE_KEY`, else none.
pub fn load_key(key_file: Option<&Path>) -> anyhow::Result<Option<Key>> {
    match key_file {
        Some(p) => Ok(Some(Key::from_file(p)?)),
        None => Ok(Key::from_env()?),
    }
}

/// Writes a new random key to `path` as hex text, readable only by its owner.
fn write_new_key(path: &Path) -> anyhow::Result<Key> {
    use std::io::Write;
    let key = Key::generate();
    let mut f = crate::perms::create_new_mode(path, crate::perms::SECRET_MODE)
        .map_err(|e| anyhow::anyhow!("cannot create key file {}: {e}", path.display()))?;
    let mut text = zeroize::Zeroizing::new(String::with_capacity(2 * crate::crypt::KEY_LEN + 1));
    text.push_str(&key.hex());
    text.push('\n');
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

pub fn run(root: &Path, args: InitArgs, key: Option<Key>) -> anyhow::Result<i32> {
    if root.join(crate::CONFIG_FILE).exists() {
        anyhow::bail!("{} already holds a store", root.display());
    }
    let key = match (&args.new_key_file, key) {
        (Some(_), Some(_)) => {
            anyhow::bail!(
                "--new-key-file makes a new key: do not also give --key-file or FOOTAGE_KEY"
            )
        }
        (Some(p), None) => Some(write_new_key(p)?),
        (None, key) => key,
    };
    if args.encrypt && key.is_none() {
        anyhow::bail!("--encrypt needs a key: --key-file PATH, FOOTAGE_KEY or --new-key-file PATH");
    }
    let mut opts = StoreOptions {
        // A key from FOOTAGE_KEY without --encrypt does not encrypt a new store.
        key: if args.encrypt { key } else { None },
        group: args.group,
        simulated_clock: args.simulated_clock,
        ..StoreOptions::default()
    };
    if let Some(c) = args.chunk_size {
        opts.chunk_size = c;
    }
    let store = crate::Store::create_with(root, &opts)?;
    let cfg = store.config().clone();
    store.close()?;
    let clock = cfg.clock_name();
    print_json(&Created {
        store: root.display().to_string(),
        store_id: cfg.store_id,
        encryption: cfg.encryption,
        clock,
        key_id: cfg.key_id,
        group: cfg.group,
    })?;
    Ok(super::EXIT_OK)
}
