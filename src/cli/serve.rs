//! `footage serve`: runs the HTTP API and the web review page over the store until Ctrl-C or
//! SIGTERM, then closes the store (final checkpoint).
//!
//! Invariant: prints one JSON line `{"listening": URL, ...}` on stdout once it accepts
//! connections (scripts read the port from it when `--addr` names port 0); request logs go to
//! stderr.

use std::net::SocketAddr;

use clap::Args;

use super::println_out;
use crate::server::{Server, ServerOptions};
use crate::Store;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  footage serve                                  http://127.0.0.1:8080 (review page at /)
  footage serve --addr 127.0.0.1:0               any free port: read it from the JSON line
  footage token add reviewer && footage serve --addr 0.0.0.0:8080
  footage serve --watch /srv/dock                ingest what docks copy there (README: dock folder)

Without tokens the server answers only on loopback and only to Host names 127.0.0.1, [::1]
or localhost; with tokens every request except /healthz and the page's static files needs
Authorization: Bearer TOKEN. Listening on another address needs at least one token. A store
that has had tokens keeps requiring them (even with tokens.json missing or empty) until
`footage token disable-auth`.")]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub addr: SocketAddr,
    /// Do not log one line per request on stderr
    #[arg(long)]
    pub quiet: bool,
    /// Scrub local copies in the background at this bandwidth (e.g. 50MB/s; `off` for none),
    /// repairing from verified cloud copies
    #[arg(long, default_value = "off", value_name = "RATE", value_parser = scrub_rate_arg)]
    pub scrub_rate: ScrubRate,
    /// Publish the audit chain head to the cloud tier this often when it moved (e.g. 30s, 5m,
    /// 1h; `off` for never), for `audit --verify --cloud`; only once the store has a head in
    /// the cloud (`retention apply` or `audit --publish` publishes the first)
    #[arg(long, default_value = "5m", value_name = "INTERVAL", value_parser = interval_arg)]
    pub publish_head_every: Interval,
    /// Ingest each video a dock copies into DIR with its sidecar DIR/VIDEO.json, then move
    /// both to DIR/done/ (or DIR/failed/ with a .error); see README, "The dock folder"
    #[arg(long, value_name = "DIR")]
    pub watch: Option<std::path::PathBuf>,
    /// How long a video and its sidecar must stay unchanged before --watch takes them
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = crate::watch::parse_duration, requires = "watch")]
    pub watch_settle: std::time::Duration,
    /// Time between two looks at the --watch folder
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = crate::watch::parse_duration, requires = "watch")]
    pub watch_interval: std::time::Duration,
}

/// `--publish-head-every`: an interval, or never.
#[derive(Debug, Clone, Copy)]
pub struct Interval(Option<std::time::Duration>);

fn interval_arg(s: &str) -> Result<Interval, String> {
    if s == "off" {
        return Ok(Interval(None));
    }
    let bad =
        || format!("{s:?} is not an interval: a whole number and s, m or h (e.g. 5m), or off");
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("{s:?}: the interval must be at least 1s (or off)"));
    }
    Ok(Interval(Some(std::time::Duration::from_secs(secs))))
}

/// `--scrub-rate`: bytes per second, or none.
#[derive(Debug, Clone, Copy)]
pub struct ScrubRate(Option<u64>);

fn scrub_rate_arg(s: &str) -> Result<ScrubRate, String> {
    if s == "off" || s == "0" {
        return Ok(ScrubRate(None));
    }
    super::admin::rate_arg(s).map(|r| ScrubRate(Some(r)))
}

pub fn run(store: Store, args: ServeArgs, local_actor: String) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let opts = ServerOptions {
        addr: args.addr,
        local_actor,
        log_requests: !args.quiet,
        publish_head_every: args.publish_head_every.0,
        ..ServerOptions::default()
    };
    let scrub = match args.scrub_rate.0 {
        Some(rate) => Some(store.start_scrub(crate::ScrubOptions {
            bytes_per_sec: rate,
            ..crate::ScrubOptions::default()
        })?),
        None => None,
    };
    let watcher = match &args.watch {
        Some(dir) => Some(crate::watch::Watcher::start(
            &store,
            crate::watch::WatchOptions {
                dir: dir.clone(),
                settle: args.watch_settle,
                interval: args.watch_interval,
                actor: crate::watch::default_actor(dir, Some(&super::os_identity())),
            },
        )?),
        None => None,
    };
    let served = rt.block_on(async {
        let server = Server::bind(store.clone(), opts).await?;
        let addr = server.local_addr();
        // The control channel: store-changing commands from other shells (src/control/).
        let control = crate::control::ControlServer::start(
            store.clone(),
            crate::control::ControlOptions {
                run: Some(super::beside::service_runner()),
                ..crate::control::ControlOptions::default()
            },
        )?;
        // Caught from before the "listening" line: a SIGTERM right after it is a clean stop.
        let signals = Signals::install();
        if control.stale_replaced() {
            eprintln!(
                "footage serve: replaced a stale control socket {} (a service that was killed)",
                control.socket_path().display()
            );
        }
        let tokens = crate::server::TokenSet::load(store.root())?.len();
        println_out(
            &serde_json::json!({
                "listening": format!("http://{addr}"),
                "store": store.root().display().to_string(),
                "tokens": tokens,
                "control": control.socket_path().display().to_string(),
            })
            .to_string(),
        )?;
        let required = crate::server::tokens::auth_required(store.root()).unwrap_or(true);
        if tokens == 0 && required {
            eprintln!(
                "footage serve: this store requires access tokens but has none: every request is refused until one is added (`footage token add NAME`) or authentication is turned off (`footage token disable-auth`)"
            );
        } else if tokens == 0 {
            eprintln!(
                "footage serve: no access tokens: anyone on this machine can use http://{addr}/ (add one with `footage token add NAME`)"
            );
        }
        let served = server.run(shutdown_signal(signals)).await;
        // No new commands; running ones finish; the socket goes (before the store closes).
        tokio::task::block_in_place(|| control.stop());
        served?;
        anyhow::Ok(())
    });
    drop(rt);
    // Stops the watcher: an ingest in progress is left unacknowledged, its video in DIR.
    drop(watcher);
    drop(scrub);
    let closed = store.close();
    served?;
    closed?;
    Ok(super::EXIT_OK)
}

/// SIGTERM and SIGINT, caught from when this is made.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal(signals: Signals) {
    async fn one(s: Option<tokio::signal::unix::Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        _ = one(signals.int) => {}
        _ = one(signals.term) => {}
    }
    eprintln!("footage serve: stopping");
}
