//! `footage token add|remove|list`: the access tokens of `footage serve`.
//!
//! Invariant: a new token is printed once, by `add`; only its SHA-256 is kept (in
//! `<store>/tokens.json`). These commands do not need the store's lock, so they work while
//! `footage serve` runs; the server sees the change at its next request. Every add and remove
//! is audited (`token-add`, `token-remove`, actor = the OS user): recorded by the command when
//! it can open the store, else by the running server (server/token_audit.rs).

use std::path::Path;

use clap::{Args, Subcommand};

use super::{id_arg, print_json, println_out};
use crate::server::tokens;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  footage token add sgt.jones                    prints {\"name\":..,\"token\":..} once: keep it
  footage token add cctv-viewer --read-only      may search and watch, not change
  footage token list                             names and rights, never the tokens
  footage token remove sgt.jones                 stops working at the next request")]
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
        /// The token may search, read metadata and watch video, but not change anything
        #[arg(long)]
        read_only: bool,
    },
    /// Remove a token: requests with it are refused from then on
    Remove {
        /// The token's name
        name: String,
    },
    /// List the tokens (one JSON line each: name, read_only, created)
    List,
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

pub fn run(
    root: &Path,
    args: TokenArgs,
    open: &dyn Fn() -> anyhow::Result<crate::Store>,
) -> anyhow::Result<i32> {
    if !root.join(crate::CONFIG_FILE).exists() {
        return Err(crate::Error::NoStore {
            path: root.to_path_buf(),
        }
        .into());
    }
    match args.command {
        TokenCommand::Add { name, read_only } => {
            let token = tokens::add(root, &name, read_only)?;
            // Printed first: the token exists now, and a failure to record it must not lose it.
            print_json(&serde_json::json!({
                "name": name,
                "token": token,
                "read_only": read_only,
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
                    "read_only": e.read_only,
                    "created": e.created,
                });
                println_out(&line.to_string())?;
            }
        }
    }
    Ok(super::EXIT_OK)
}
