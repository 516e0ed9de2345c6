//! Opening, step 2: `footage.toml` (read, or created from the options), the store's group,
//! the encryption key, the default `policy.toml`, and the audit log.
//!
//! Invariant: a missing or wrong key is refused before anything else is read or written.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, StoreOptions};
use crate::error::{Error, Result};

/// The configuration and what it names: the store's id and its group (name and gid).
pub(super) struct Settings {
    pub config: Config,
    pub store_id: [u8; 16],
    pub group: Option<(String, u32)>,
}

/// Reads `footage.toml` (creating it from `opts` for a new store) and gives the root to the
/// store's group.
pub(super) fn read_config(root: &Path, opts: &StoreOptions) -> Result<Settings> {
    let config = Config::load_or_create(root, opts)?;
    let store_id = config.store_id_bytes().ok_or_else(|| Error::Config {
        path: root.join(crate::config::CONFIG_FILE),
        what: "bad store_id".into(),
    })?;
    let group = match &config.group {
        Some(name) => {
            let gid = crate::perms::group_id(name)?;
            crate::perms::give_dir_to_group(root, name, gid)?;
            Some((name.clone(), gid))
        }
        None => None,
    };
    Ok(Settings {
        config,
        store_id,
        group,
    })
}

/// The sealing context of an encrypted store; refuses a missing or wrong key before anything
/// else is read or written.
pub(in crate::store) fn store_crypt(
    root: &Path,
    config: &Config,
    store_id: [u8; 16],
    opts: &StoreOptions,
) -> Result<Option<Arc<crate::crypt::Crypt>>> {
    let Some(expected) = config.key_id.clone() else {
        return Ok(None);
    };
    let path = root.join(crate::config::CONFIG_FILE);
    let key = opts.key.clone().ok_or_else(|| Error::KeyRequired {
        path: root.to_path_buf(),
        key_id: expected.clone(),
    })?;
    let got = key.id();
    if !got.eq_ignore_ascii_case(&expected) {
        return Err(Error::WrongKey {
            path,
            expected,
            got,
        });
    }
    Ok(Some(Arc::new(crate::crypt::Crypt::new(key, store_id))))
}

/// The retention policy is written with its defaults on first use, for people to edit;
/// it is read (and validated) only by retention and the cloud tier.
pub(super) fn write_default_policy(root: &Path) -> Result<()> {
    let policy = root.join(crate::policy::POLICY_FILE);
    if !policy.exists() {
        crate::log::write_atomic(&policy, crate::policy::DEFAULT_POLICY.as_bytes())?;
    }
    Ok(())
}
