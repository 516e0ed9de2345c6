//! `footage token add|remove|list|disable-auth`: the access tokens of `footage serve`.
//!
//! Invariants: a new token is printed once, by `add`; only its SHA-256 is kept (in
//! `<store>/tokens.json`). `add`, `remove` and `list` do not take the store's lock, so they work
//! while `footage serve` runs; the server sees the change at its next request. Every add and
//! remove is audited (`token-add`, `token-remove`, actor = the OS user): recorded by the command
//! when it can open the store, else by the running server (server/token_audit.rs).
//! `disable-auth` opens the store (so no server runs meanwhile) and records itself in the audit
//! log.

use std::path::Path;

use clap::{Args, Subcommand};

use super::{id_arg, print_json, println_out};
use crate::server::tokens::{self, Role};
use crate::Store;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  footage token add sgt.jones                    prints {\"name\":..,\"token\":..} once: keep it
  footage token add cctv-viewer --role read      may search and watch, not change (= --read-only)
  footage token add insp.morse --role holds      may also release legal holds
  footage token add dock-3 --role ingest         a dock: its own uploads at /api/uploads only
  footage token list                             names and roles, never the tokens
  footage token remove sgt.jones                 stops working at the next request
  footage token disable-auth                     serve without tokens again (audited)

Roles: read (search, metadata, video), write (also categorize, tag, place holds, upload; the
default), holds (also release legal holds), ingest (a dock: create, continue, query and
terminate its own resumable uploads, nothing else: no search, no video). Built-in actor names (system, local, unknown,
uid:*, (footage)) cannot be token names. Once a store has had a token, `footage serve` refuses
every request without a valid one, even if tokens.json is moved away or its last token is
removed, until `footage token disable-auth` (with the server stopped and no token left).")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it (once); the store keeps only its SHA-256
    Add {
        /// Who holds it: the actor recorded for their changes
        #[arg(value_parser = id_arg)]
        name: String,
        /// What it may do: read, write (default), holds (write + release legal holds) or
        /// ingest (its own uploads at /api/uploads only)
        #[arg(long, value_name = "ROLE", value_parser = role_arg)]
        role: Option<Role>,
        /// Same as --role read: search, read metadata and watch video, but change nothing
        #[arg(long, conflicts_with = "role")]
        read_only: bool,
    },
    /// Remove a token: requests with it are refused from then on
    Remove {
        /// The token's name
        name: String,
    },
    /// List the tokens (one JSON line each: name, role, read_only, created)
    List,
    /// Turn authentication off: `footage serve` answers loopback requests without a token
    /// again. Only with no token left and the server stopped; recorded in the audit log
    DisableAuth,
}

/// Copies the token change just made into the audit log when this process can open the store;
/// while `footage serve` holds it, the server does (token_audit.rs).
fn record(open: &dyn Fn() -> anyhow::Result<crate::Store>) -> anyhow::Result<()> {
    match open() {
        Ok(store) => {
            crate::server::token_audit::drain(&store)?;
            Ok(())
        }
        Err(e) if matches!(e.downcast_ref(), Some(crate::Error::Locked { .. })) => Ok(()),
        Err(e) => Err(e.context(format!(
            "the token change is made but not yet in the audit log (it waits in {}; \
             the next `footage serve` or `footage token add|remove` records it)",
            crate::server::token_audit::PENDING_FILE
        ))),
    }
}

fn role_arg(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn run(
    root: &Path,
    args: TokenArgs,
    open: &dyn Fn() -> anyhow::Result<Store>,
    actor: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<i32> {
    if !root.join(crate::CONFIG_FILE).exists() {
        return Err(crate::Error::NoStore {
            path: root.to_path_buf(),
        }
        .into());
    }
    match args.command {
        TokenCommand::Add {
            name,
            role,
            read_only,
        } => {
            let role = role.unwrap_or(Role::from_read_only(read_only));
            let token = tokens::add_with_role(root, &name, role)?;
            print_json(&serde_json::json!({
                "name": name,
                "token": token,
                "role": role.as_str(),
                "read_only": !role.may_change(),
            }))?;
            record(open)?;
        }
        TokenCommand::Remove { name } => {
            tokens::remove(root, &name)?;
            print_json(&serde_json::json!({ "removed": name }))?;
            record(open)?;
        }
        TokenCommand::List => {
            for e in tokens::list(root)?.entries() {
                let line = serde_json::json!({
                    "name": e.name,
                    "role": e.role.as_str(),
                    "read_only": e.read_only(),
                    "created": e.created,
                });
                println_out(&line.to_string())?;
            }
        }
        TokenCommand::DisableAuth => {
            let actor = actor()?;
            let store = open()?;
            let changed = tokens::disable_auth(&store, &actor)?;
            store.close()?;
            print_json(&serde_json::json!({ "auth": "off", "changed": changed }))?;
        }
    }
    Ok(super::EXIT_OK)
}
