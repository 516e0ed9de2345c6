//! The `footage` command line: argument definitions, dispatch, output and exit codes.
//!
//! Invariants: every failure prints one line `error: ...` on stderr and exits 1 (2 for bad
//! arguments, as clap does); nothing panics on user input; JSON goes to stdout (one object per
//! line, pretty-printed when stdout is a terminal for single objects); progress bars go to
//! stderr and only when it is a terminal; a closed stdout pipe ends the command quietly.

mod actor;
mod admin;
mod audit;
mod beside;
mod change;
mod compact;
mod demo;
mod demo_data;
pub(crate) mod find;
mod fleet;
mod ingest;
mod init;
mod read;
mod restore;
mod retention;
mod serve;
mod token;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

const EXAMPLES: &str = "\
Examples:
  footage demo                                   build and tour a demo store
  footage --store /srv/footage init --group footage   a new store (files 0640, dirs 0750)
  footage init --encrypt --new-key-file /etc/footage.key   an encrypted store (AES-256-GCM)
  footage --key-file /etc/footage.key stats      open an encrypted store (or FOOTAGE_KEY=<hex>)
  footage ingest clip.mp4 --officer MET-004217 --device AX-B3-00123 \\
          --start 2026-11-20T14:03:00Z --gps track.gpx --category evidential
  footage ingest --manifest dock-0423.jsonl      one segment per JSON line
  footage info 42                                metadata and SHA-256
  footage find --officer MET-004217 --from 2026-11-24T14:00:00Z --to 2026-11-24T16:00:00Z
  footage find --near -33.86,151.21 --radius 200 --from 2026-11-24T01:00:00Z --to 2026-11-24T03:00:00Z
  footage find --bbox 51.50,-0.13,51.52,-0.11 --tag stop-and-search --limit 50
  footage track 42 --geojson                     the GPS track of a segment
  footage categorize 42 evidential               retention follows the longest category
  footage hold 42 --case OP-TRIDENT-7            a legal hold blocks deletion
  footage --actor sgt.jones release 42 --case OP-TRIDENT-7
  footage restore --case OP-TRIDENT-7            bring a case's evicted footage back (SHA-256 checked)
  footage pin --case OP-TRIDENT-7 --until 2027-03-01T00:00:00Z   keep it local until then
  footage retention plan --days 7                what goes in the next week
  footage retention apply --now 2027-01-01T00:00:00Z --dry-run   (a future --now
                                                 without --dry-run: only an init --simulated-clock store)
  footage compact --min-dead 0.5                 rewrite volumes that are mostly dead space
  footage --store /srv/new recover --from-cloud --url az://evidence/station-12
  footage get 42 --out clip.mp4                  copy a segment's bytes out
  footage get 42 --verify --out clip.mp4         ... only if its SHA-256 matches
  footage export 42 --out /media/case-17         42.mp4 + 42.custody.json (chain of custody)
  footage audit --segment 42                     who did what to segment 42 (JSON lines)
  footage audit --verify                         check the audit log's hash chain
  footage get 42 --offset 1048576 --length 65536 > part.bin
  footage verify                                 re-check every chunk CRC and SHA-256
  footage verify --repair --cloud                ... repair from the cloud, check cloud copies
  footage scrub --rate 50MB/s                    one paced pass, resuming from its cursor
  footage --store /srv/footage stats             counts, volumes, disk usage
  footage serve --addr 127.0.0.1:8080            HTTP API + review page at http://127.0.0.1:8080/
  footage token add sgt.jones [--role read|write|holds]   an access token for footage serve (printed once)

Exit codes: 0 success, 1 failure (or corruption found by verify), 2 bad arguments
(including retention apply --now later than the real clock on a real-clock store).";

#[derive(Parser, Debug)]
#[command(
    name = "footage",
    version,
    about = "A storage engine for police body-worn-video footage",
    after_help = EXAMPLES,
    allow_negative_numbers = true
)]
pub struct Cli {
    /// Store directory (made by `footage init`; other commands refuse a directory without a store)
    #[arg(
        long,
        global = true,
        env = "FOOTAGE_STORE",
        default_value = "./footage-store",
        value_name = "DIR"
    )]
    pub store: PathBuf,

    /// Who is acting, for the audit trail (default: the OS user); the OS identity (uid and
    /// user name) is recorded beside it
    #[arg(long, global = true, env = "FOOTAGE_ACTOR", value_name = "NAME", value_parser = actor_arg)]
    pub actor: Option<String>,

    /// Key of an encrypted store: a file of 32 raw bytes or the key as hex or base64 text
    /// (else the FOOTAGE_KEY environment variable holds it as hex or base64)
    #[arg(long, global = true, env = "FOOTAGE_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Format of the logs on stderr: text, or json (one object per line, for journald or
    /// ELK); FOOTAGE_LOG filters them (e.g. `info`, `warn`, `footage=debug`)
    #[arg(
        long,
        global = true,
        env = "FOOTAGE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: crate::service::logs::LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a store (optionally encrypted at rest with --encrypt) and print its id
    Init(init::InitArgs),
    /// Store a video segment (or every segment of a manifest) and print its id and SHA-256
    Ingest(ingest::IngestArgs),
    /// Write a segment's bytes (or a range of them) to stdout or a file
    Get(read::GetArgs),
    /// Export a segment for evidence: <ID>.mp4 and <ID>.custody.json (SHA-256 checked)
    Export(read::ExportArgs),
    /// Print a segment's metadata as JSON
    Info(read::InfoArgs),
    /// Find segments by officer, device, time, place, case, tag, category (JSON lines)
    Find(find::FindArgs),
    /// Print a segment's GPS track (JSON lines, or GeoJSON)
    Track(find::TrackArgs),
    /// Add a category to a segment (or take it away with --remove); retention follows it
    Categorize(change::LabelArgs),
    /// Add a tag to a segment (or take it away with --remove)
    Tag(change::LabelArgs),
    /// Link a segment to a case (or unlink it with --remove)
    Case(change::LabelArgs),
    /// Place a legal hold on a segment for a case: it cannot be deleted until released
    Hold(change::HoldArgs),
    /// Release a case's legal hold on a segment
    Release(change::HoldArgs),
    /// Bring evicted segments back from the cloud tier into local volumes (SHA-256 checked)
    Restore(restore::RestoreArgs),
    /// Keep segments local: retention does not evict them while the pin lasts
    Pin(restore::PinArgs),
    /// Take pins away (retention may evict the segments again)
    Unpin(restore::UnpinArgs),
    /// Retention: what policy.toml will upload, evict and delete, and doing it
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Rewrite sealed volumes that hold mostly dead bytes, freeing their space (JSON summary)
    Compact(compact::CompactArgs),
    /// Rebuild a lost store's catalog from its cloud copies into a new --store
    Recover(retention::RecoverArgs),
    /// Print segment, volume and disk statistics as JSON
    Stats,
    /// Re-read every chunk (CRC) and every segment's SHA-256; exit 1 if anything is corrupt
    Verify(admin::VerifyArgs),
    /// Check local copies at a limited bandwidth, resuming where the last pass stopped;
    /// repair from verified cloud copies
    Scrub(admin::ScrubArgs),
    /// Print the audit log (JSON lines), or check its hash chain with --verify
    Audit(audit::AuditArgs),
    /// Serve the HTTP API and the web review page (default http://127.0.0.1:8080)
    Serve(serve::ServeArgs),
    /// Manage the access tokens of `footage serve` (add, remove, list)
    Token(token::TokenArgs),
    /// Build a demo store of synthetic footage around a London station and tour it
    Demo(demo::DemoArgs),
    /// The force-wide table: publish this store as a station, find across every station,
    /// get a segment of any station from its cloud copy
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
}

/// clap's parsers of times and ids are the ones the review API uses (src/search.rs).
/// Identities (OS user names, audit actors) and error lines are shared with the control
/// channel, which resolves them for clients (src/control/identity.rs).
pub(crate) use crate::control::identity::{actor_arg, audit_actor_of, error_text};
pub(crate) use crate::search::{label_arg as id_arg, time_arg};
use actor::{actor, audit_actor, env_user, with_os_identity};
pub(crate) use actor::{actor_of, os_identity};

/// Parses a segment id for clap.
pub(crate) fn segment_arg(s: &str) -> Result<u64, String> {
    crate::store::parse_id(s).map_err(|e| e.to_string())
}

/// Where a command's output goes when the service runs it for a control client
/// (src/cli/beside.rs): lines to the client instead of this process's stdout and stderr.
pub(crate) struct Redirect {
    /// Whether the client's stdout is a terminal.
    pub pretty: bool,
    pub line: LineSink,
}

/// Takes one line of a redirected command's output: `true` for stderr.
pub(crate) type LineSink = Box<dyn FnMut(bool, &str) -> std::io::Result<()>>;

thread_local! {
    /// The redirect of the command running on this thread, if any.
    static REDIRECT: std::cell::RefCell<Option<Redirect>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's command output going to `redirect`.
pub(crate) fn with_redirect<R>(redirect: Redirect, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            REDIRECT.with(|r| r.borrow_mut().take());
        }
    }
    REDIRECT.with(|r| *r.borrow_mut() = Some(redirect));
    let _reset = Reset;
    f()
}

/// Sends a line to the redirect, if this thread has one; `None` when it has not.
fn redirected(stderr: bool, line: &str) -> Option<std::io::Result<()>> {
    REDIRECT.with(|r| r.borrow_mut().as_mut().map(|rd| (rd.line)(stderr, line)))
}

fn is_redirected() -> bool {
    REDIRECT.with(|r| r.borrow().is_some())
}

/// Prints one line on stderr (or to the control client the command runs for).
pub(crate) fn eprintln_out(line: &str) {
    if redirected(true, line).is_none() {
        eprintln!("{line}");
    }
}

/// Where progress bars draw: stderr, or nowhere when the command runs for a control client.
pub(crate) fn progress_target() -> indicatif::ProgressDrawTarget {
    if is_redirected() {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    }
}

/// Prints one JSON value: pretty on a terminal, one line otherwise.
pub(crate) fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let pretty = REDIRECT.with(|r| r.borrow().as_ref().map(|rd| rd.pretty));
    let text = if pretty.unwrap_or_else(|| std::io::stdout().is_terminal()) {
        serde_json::to_string_pretty(v)?
    } else {
        serde_json::to_string(v)?
    };
    println_out(&text)
}

/// Prints one line to stdout, turning a closed pipe into a quiet exit.
pub(crate) fn println_out(line: &str) -> anyhow::Result<()> {
    if let Some(r) = redirected(false, line) {
        return r.map_err(anyhow::Error::from);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(anyhow::Error::from)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub(crate) fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(Some(total), progress_target());
    let style = indicatif::ProgressStyle::with_template(
        "{msg:12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    crate::service::logs::install(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => failed(&e),
    }
}

/// Reports a failed command: its `error: ...` line on stderr (or to the control client), and
/// its exit code. A closed stdout pipe is no failure.
pub(crate) fn failed(e: &anyhow::Error) -> i32 {
    if is_broken_pipe(e) {
        return EXIT_OK;
    }
    // A pretend time on a real-clock store is a usage error (exit 2), like a bad flag.
    let code = match e.downcast_ref::<crate::Error>() {
        Some(crate::Error::ClockAhead { .. }) => EXIT_USAGE,
        _ => EXIT_FAILURE,
    };
    let hint = e
        .downcast_ref::<crate::Error>()
        .map(flag_hint)
        .unwrap_or_default();
    eprintln_out(&format!("error: {}{hint}", error_text(e)));
    code
}

/// The flags that answer an engine error (whose message names only library concepts).
fn flag_hint(e: &crate::Error) -> String {
    match e {
        crate::Error::NoStore { path } => {
            format!(
                " (create one with: footage init --store {})",
                path.display()
            )
        }
        crate::Error::KeyRequired { .. } => {
            ": give its key with --key-file PATH or the FOOTAGE_KEY environment variable".into()
        }
        crate::Error::ClockAhead { .. } => {
            " (--now; `footage init --simulated-clock` creates a store with a simulated clock; \
             `retention plan` and --dry-run accept any time)"
                .into()
        }
        crate::Error::SegmentCorrupt { .. } => " (run `footage verify`)".into(),
        _ => String::new(),
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let key = init::load_key(cli.key_file.as_deref())?;
    if beside::carried(&cli.command) {
        // Store-changing commands: here, or by the running service (beside.rs).
        return match beside::open_changing(&cli.store, &key)? {
            beside::Access::Local(store) => {
                let who = Caller::local(&cli);
                run_changing(&store, cli.command, &who)
            }
            beside::Access::Service(client) => beside::run_remote(&client, cli),
        };
    }
    // Read commands open through beside::open_reading (a read-only open beside the service goes
    // there); `serve` and `token` need the store itself.
    let open = |dir: &std::path::Path| beside::open_reading(dir, &key);
    let open_owned = |dir: &std::path::Path| self::open(dir, &key);
    let actor = || actor(&cli.actor);
    // Commands whose actions go in the audit log under the actor.
    let as_actor = || -> anyhow::Result<crate::Store> {
        Ok(open(&cli.store)?.with_actor(&audit_actor(&cli.actor))?)
    };
    match cli.command {
        Command::Init(args) => init::run(&cli.store, args, key.clone()),
        Command::Demo(args) => demo::run(args),
        Command::Get(args) => read::get(&as_actor()?, args),
        Command::Export(args) => read::export(&as_actor()?, args),
        Command::Info(args) => read::info(&open(&cli.store)?, args),
        Command::Find(args) => find::find(&as_actor()?, args),
        Command::Track(args) => find::track(&open(&cli.store)?, args),
        Command::Retention(c) => retention::run(&open(&cli.store)?, c, &actor()?),
        Command::Recover(a) => retention::recover(&cli.store, a, &actor()?, key.clone()),
        Command::Stats => admin::stats(&open(&cli.store)?),
        Command::Verify(args) => admin::verify(&as_actor()?, args),
        Command::Audit(args) => audit::run(&open(&cli.store)?, args),
        Command::Fleet(c) => fleet::run(&as_actor()?, c),
        Command::Serve(args) => {
            // Without tokens, changes are made as the local user (or --actor).
            let local = actor().unwrap_or_else(|_| with_os_identity("local"));
            serve::run(open_owned(&cli.store)?, args, local)
        }
        Command::Token(args) => token::run(&cli.store, args, &|| open_owned(&cli.store), actor),
        // Carried commands are dispatched above.
        c => anyhow::bail!("internal: {c:?} reached the read dispatch"),
    }
}

/// Who runs a store-changing command: the actor named, the environment's user name and the OS
/// identity (this process's, or a control client's peer credentials).
pub(crate) struct Caller {
    pub named: Option<String>,
    pub user: Option<String>,
    pub uid: u32,
    pub os: String,
}

impl Caller {
    fn local(cli: &Cli) -> Caller {
        Caller {
            named: cli.actor.clone(),
            user: env_user(),
            // SAFETY: getuid cannot fail and touches no memory.
            uid: unsafe { libc::getuid() },
            os: os_identity(),
        }
    }

    fn actor(&self) -> anyhow::Result<String> {
        actor_of(self.named.as_deref(), self.user.as_deref(), &self.os)
    }

    fn audit_actor(&self) -> String {
        audit_actor_of(
            self.named.as_deref(),
            self.user.as_deref(),
            self.uid,
            &self.os,
        )
    }
}

/// Runs a store-changing command against an open store: the one code path of these commands,
/// whether this process opened the store or the service runs it for a control client (its
/// output then goes to the client through [`with_redirect`]).
pub(crate) fn run_changing(
    store: &crate::Store,
    command: Command,
    who: &Caller,
) -> anyhow::Result<i32> {
    let as_actor = || -> anyhow::Result<crate::Store> { Ok(store.with_actor(&who.audit_actor())?) };
    match command {
        Command::Ingest(args) => ingest::run(&as_actor()?, args),
        Command::Categorize(a) => change::label(store, change::Label::Category, a, &who.actor()?),
        Command::Tag(a) => change::label(store, change::Label::Tag, a, &who.actor()?),
        Command::Case(a) => change::label(store, change::Label::Case, a, &who.actor()?),
        Command::Hold(a) => change::hold(store, a, false, &who.actor()?),
        Command::Release(a) => change::hold(store, a, true, &who.actor()?),
        Command::Retention(c) => retention::run(store, c, &who.actor()?),
        Command::Restore(a) => restore::restore(store, a, &who.actor()?),
        Command::Pin(a) => restore::pin(store, a, &who.actor()?),
        Command::Unpin(a) => restore::unpin(store, a, &who.actor()?),
        Command::Compact(a) => compact::run(store, a, &who.actor()?),
        Command::Verify(args) => admin::verify(&as_actor()?, args),
        Command::Scrub(args) => admin::scrub(&as_actor()?, args),
        // Publishing writes the chain head to the cloud tier: the store's owner does it.
        Command::Audit(args) if args.publish => audit::run(store, args),
        other => anyhow::bail!(
            "{} is not a command that changes the store",
            beside::name(&other)
        ),
    }
}

fn open(dir: &std::path::Path, key: &Option<crate::Key>) -> anyhow::Result<crate::Store> {
    let opts = crate::StoreOptions {
        key: key.clone(),
        ..crate::StoreOptions::default()
    };
    Ok(crate::Store::open_with(dir, &opts)?)
}
