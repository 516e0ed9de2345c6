//! The CLI beside a running `footage serve`: which commands the service carries out, the one
//! place where "the store is locked" is decided, the client side of carried commands, and the
//! service side that runs them with the CLI's own code.
//!
//! Invariants:
//! - a store-changing command ([`carried`]) opens the store itself when it can; only when the
//!   open fails with `Error::Locked` does it go to the service's control channel, and when no
//!   service answers the original "locked" error stands, with a hint;
//! - the service re-parses the client's argv with the same parser and runs only [`carried`]
//!   commands other than `ingest` (whose files the client reads: [`run_remote`]), through
//!   [`super::run_changing`], the same function a local command uses; the client's `--store`
//!   and `--key-file` are ignored (the service's store is used);
//! - the actor of a carried command is the client's claim (`--actor`, `FOOTAGE_ACTOR` or its
//!   `$USER`) with the OS identity of the socket's peer credentials, never one the client
//!   states;
//! - output lines and the exit code of a carried command are those of the local command, and
//!   the client prints them unchanged.

use std::io::IsTerminal;
use std::path::Path;

use clap::Parser;

use super::ingest::{IngestOutput, Sink, Target};
use super::{
    admin::VerifyArgs, audit::AuditArgs, retention::RetentionCommand, Caller, Cli, Command,
};
use crate::control::server::RunContext;
use crate::control::{Claim, ControlClient, ControlError, Reply, RunCommand};
use crate::meta::SegmentMeta;
use crate::Store;

/// Whether `command` changes the store, so that the running service carries it out when the
/// store is locked (`audit --publish` writes the chain head to the cloud tier in the store's
/// name, so it is one). `token` is not here: `add`, `remove` and `list` work beside the service
/// without the store's lock (src/cli/token.rs), and `disable-auth` needs the service stopped.
pub(crate) fn carried(command: &Command) -> bool {
    matches!(
        command,
        Command::Ingest(_)
            | Command::Categorize(_)
            | Command::Tag(_)
            | Command::Case(_)
            | Command::Hold(_)
            | Command::Release(_)
            | Command::Restore(_)
            | Command::Pin(_)
            | Command::Unpin(_)
            | Command::Retention(RetentionCommand::Apply(_))
            | Command::Compact(_)
            | Command::Scrub(_)
            | Command::Verify(VerifyArgs { repair: true, .. })
            | Command::Audit(AuditArgs { publish: true, .. })
    )
}

/// The subcommand's name, for messages.
pub(crate) fn name(command: &Command) -> &'static str {
    match command {
        Command::Init(_) => "init",
        Command::Ingest(_) => "ingest",
        Command::Get(_) => "get",
        Command::Export(_) => "export",
        Command::Info(_) => "info",
        Command::Find(_) => "find",
        Command::Track(_) => "track",
        Command::Categorize(_) => "categorize",
        Command::Tag(_) => "tag",
        Command::Case(_) => "case",
        Command::Hold(_) => "hold",
        Command::Release(_) => "release",
        Command::Restore(_) => "restore",
        Command::Pin(_) => "pin",
        Command::Unpin(_) => "unpin",
        Command::Retention(_) => "retention",
        Command::Compact(_) => "compact",
        Command::Recover(_) => "recover",
        Command::Stats => "stats",
        Command::Verify(_) => "verify",
        Command::Scrub(_) => "scrub",
        Command::Audit(_) => "audit",
        Command::Serve(_) => "serve",
        Command::Token(_) => "token",
        Command::Demo(_) => "demo",
        Command::Fleet(_) => "fleet",
    }
}

/// How a store-changing command reaches the store.
pub(crate) enum Access {
    /// This process opened it.
    Local(Store),
    /// `footage serve` holds it: its control channel carries the command out.
    Service(ControlClient),
}

/// THE place where a store-changing command decides what "the store is locked" means: open
/// the store; if another process holds it, use the control channel of the `footage serve`
/// that does; if none answers, the locked error stands, with the reason none answered. A
/// member of the store's group cannot open the store at all (its `LOCK` is not writable to
/// the group): for them too the running service is the way in.
pub(crate) fn open_changing(root: &Path, key: &Option<crate::Key>) -> anyhow::Result<Access> {
    match super::open(root, key) {
        Ok(store) => Ok(Access::Local(store)),
        Err(e) if is_denied(&e) => match ControlClient::connect(root) {
            Ok(client) => Ok(Access::Service(client)),
            Err(_) => Err(e),
        },
        Err(e) if is_locked(&e) => match ControlClient::connect(root) {
            Ok(client) => Ok(Access::Service(client)),
            Err(ControlError::NoService { .. }) => Err(e.context(format!(
                "no footage serve answers on its control channel {} (another command holds \
                 the store: try again when it ends)",
                root.join(crate::control::SOCKET_FILE).display()
            ))),
            Err(ce) => Err(e.context(ce.to_string())),
        },
        Err(e) => Err(e),
    }
}

/// THE place where a read command opens the store. While `footage serve` holds it (or this
/// user may not open it for writing), the store is opened read-only beside the service
/// ([`Store::open_read_only_with`]): it sees everything committed up to now, writes nothing,
/// and its audited reads are recorded in the service's log through the control channel, with
/// the caller's OS identity as the kernel gives it. With no service answering, the open's own
/// error stands.
pub(crate) fn open_reading(root: &Path, key: &Option<crate::Key>) -> anyhow::Result<Store> {
    match super::open(root, key) {
        Ok(store) => Ok(store),
        Err(e) if is_denied(&e) || is_locked(&e) => match ControlClient::connect(root) {
            Ok(client) => {
                let opts = crate::StoreOptions {
                    key: key.clone(),
                    ..crate::StoreOptions::default()
                };
                let sink: std::sync::Arc<dyn crate::AuditSink> = std::sync::Arc::new(client);
                Ok(Store::open_read_only_with(root, &opts, Some(sink))?)
            }
            Err(ControlError::NoService { .. }) if is_locked(&e) => Err(e.context(format!(
                "no footage serve answers on its control channel {} (another command holds \
                 the store: try again when it ends)",
                root.join(crate::control::SOCKET_FILE).display()
            ))),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Whether opening failed on a file this user may not write (the store's owner is another).
fn is_denied(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref(),
        Some(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied
    )
}

fn is_locked(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref(), Some(crate::Error::Locked { .. }))
}

/// What this process claims about who runs it (the service adds the OS identity).
fn claim(cli: &Cli) -> Claim {
    Claim {
        actor: cli.actor.clone(),
        user: super::env_user(),
    }
}

/// Has the service carry out `cli`'s command; prints what it prints, returns its exit code.
pub(crate) fn run_remote(client: &ControlClient, cli: Cli) -> anyhow::Result<i32> {
    let claim = claim(&cli);
    if let Command::Ingest(args) = cli.command {
        return super::ingest::run_to(&Remote { client, claim }, args);
    }
    let argv = std::env::args_os()
        .map(|a| {
            a.into_string().map_err(|a| {
                anyhow::anyhow!(
                    "argument {a:?} is not UTF-8: the service cannot be given it (run the \
                     command with the service stopped)"
                )
            })
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let pretty = std::io::stdout().is_terminal();
    let mut print = |stderr: bool, line: &str| -> std::io::Result<()> {
        if stderr {
            eprintln!("{line}");
            Ok(())
        } else {
            super::println_out(line).map_err(std::io::Error::other)
        }
    };
    Ok(client.run(argv, claim, pretty, &mut print)?)
}

/// `footage ingest` through the service: files are read here, bytes sent there.
struct Remote<'a> {
    client: &'a ControlClient,
    claim: Claim,
}

impl Target for Remote<'_> {
    fn begin(&self, meta: SegmentMeta, length: Option<u64>) -> anyhow::Result<Box<dyn Sink + '_>> {
        Ok(Box::new(RemoteSink {
            segment: self
                .client
                .begin_segment(meta, length, self.claim.clone())?,
            stated: length,
            sent: 0,
        }))
    }
}

struct RemoteSink<'a> {
    segment: crate::control::client::RemoteSegment<'a>,
    stated: Option<u64>,
    sent: u64,
}

impl Sink for RemoteSink<'_> {
    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.sent += data.len() as u64;
        if self.stated.is_some_and(|l| self.sent > l) {
            // The service was told the file's size; a file still being written is no segment.
            anyhow::bail!("the file grew while it was read: ingest it once it is complete");
        }
        Ok(self.segment.write(data)?)
    }

    fn commit(self: Box<Self>) -> anyhow::Result<IngestOutput> {
        Ok(IngestOutput::from(self.segment.commit()?))
    }
}

/// The service's runner of `run` requests (given to the control server by `footage serve`).
pub(crate) fn service_runner() -> RunCommand {
    std::sync::Arc::new(run_for_client)
}

fn run_for_client(
    ctx: &RunContext<'_>,
    emit: &mut dyn FnMut(Reply) -> Result<(), ControlError>,
) -> i32 {
    let cli = match Cli::try_parse_from(ctx.argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = emit(Reply::Err(e.render().to_string().trim_end().to_string()));
            return super::EXIT_USAGE;
        }
    };
    if !carried(&cli.command) || matches!(cli.command, Command::Ingest(_)) {
        let _ = emit(Reply::Err(format!(
            "error: footage {} is not carried out by the service's control channel",
            name(&cli.command)
        )));
        return super::EXIT_FAILURE;
    }
    let who = Caller {
        named: ctx.claim.actor.clone(),
        user: ctx.claim.user.clone(),
        uid: ctx.peer.uid,
        os: ctx.peer.os_identity(),
    };
    // The command runs on a thread of its own, its lines coming here as it prints them (the
    // redirect must own its sink); a panic in it is a failed command, not a failed service.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(bool, String)>(64);
    let pretty = ctx.pretty;
    let store = ctx.store;
    let command = cli.command;
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let redirect = super::Redirect {
                pretty,
                line: Box::new(move |stderr, line| {
                    tx.send((stderr, line.to_string()))
                        .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
                }),
            };
            super::with_redirect(redirect, || {
                match super::run_changing(store, command, &who) {
                    Ok(code) => code,
                    Err(e) => super::failed(&e),
                }
            })
        });
        for (stderr, line) in rx {
            let reply = if stderr {
                Reply::Err(line)
            } else {
                Reply::Out(line)
            };
            if emit(reply).is_err() {
                // The client is gone: the command's next line fails as a closed pipe does.
                break;
            }
        }
        worker.join().unwrap_or(super::EXIT_FAILURE)
    })
}
