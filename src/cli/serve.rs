//! `footage serve`: runs the HTTP API and the web review page over the store until Ctrl-C or
//! SIGTERM, then closes the store (final checkpoint).
//!
//! Invariants: prints one JSON line `{"listening": URL, ...}` on stdout once it accepts
//! connections (scripts read the port from it when `--addr` names port 0), then tells systemd
//! `READY=1` (src/service/notify.rs); logs (requests among them) go to stderr through
//! `tracing`. On SIGTERM or Ctrl-C: `STOPPING=1`, uploads refused with 503, no new
//! connections, requests in flight finish (up to the drain timeout), background jobs stop
//! (a run in progress finishes), the store closes with a final checkpoint; exit 0.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use super::println_out;
use crate::server::{Server, ServerOptions};
use crate::service::notify::Notifier;
use crate::service::{Ops, Service, Settings};
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
    /// repairing from verified cloud copies [default: footage.toml `[service] scrub_rate`, else off]
    #[arg(long, value_name = "RATE", value_parser = scrub_rate_arg)]
    pub scrub_rate: Option<ScrubRate>,
    /// Publish the audit chain head to the cloud tier this often when it moved (e.g. 30s, 5m,
    /// 1h; `off` for never), for `audit --verify --cloud`; only once the store has a head in
    /// the cloud (`retention apply` or `audit --publish` publishes the first)
    /// [default: `[service] publish_head_every`, else 5m]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub publish_head_every: Option<Interval>,
    /// Run `retention apply` with the real clock this often (e.g. 15m; `off` for never)
    /// [default: `[service] retention_every`, else off]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub retention_every: Option<Interval>,
    /// Write a catalog checkpoint this often when something was committed (`off` for never)
    /// [default: `[service] checkpoint_every`, else 10m]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub checkpoint_every: Option<Interval>,
    /// Check free space per data dir this often, evicting uploaded footage early past
    /// policy.toml's watermark (`off` for never) [default: `[service] disk_check_every`, else 1m]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub disk_check_every: Option<Interval>,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish
    /// [default: `[service] drain_timeout`, else 30s]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub drain_timeout: Option<Interval>,
    /// Restore queued evicted footage (`footage restore --queue`, prefetch when a hold or a pin
    /// is placed on a case) in the background at this bandwidth (`off`: the queue waits)
    /// [default: `[service] restore_rate`, else 100MB/s]
    #[arg(long, value_name = "RATE", value_parser = scrub_rate_arg)]
    pub restore_rate: Option<ScrubRate>,
    /// Look at the restore queue this often [default: `[service] restore_every`, else 10s]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub restore_every: Option<Interval>,
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
    /// Publish this store's catalogue to the force's fleet table this often (`footage fleet
    /// publish`; e.g. 1h; `off` for never) [default: `[service] fleet_publish_every`, else off]
    #[arg(long, value_name = "INTERVAL", value_parser = interval_arg)]
    pub fleet_publish_every: Option<Interval>,
    /// The station name to publish as [default: `[service] fleet_station`]
    #[arg(long, value_name = "NAME", env = "FOOTAGE_STATION")]
    pub fleet_station: Option<String>,
    /// Unfinished resumable uploads (/api/uploads) are removed this long after their creation
    /// (e.g. 168h; `off` for never)
    #[arg(long, default_value = "168h", value_name = "INTERVAL", value_parser = interval_arg)]
    pub upload_expires: Interval,
}

/// `--publish-head-every`: an interval, or never.
#[derive(Debug, Clone, Copy)]
pub struct Interval(Option<std::time::Duration>);

fn interval_arg(s: &str) -> Result<Interval, String> {
    crate::service::config::parse_interval(s).map(Interval)
}

/// `--scrub-rate`: bytes per second, or none.
#[derive(Debug, Clone, Copy)]
pub struct ScrubRate(Option<u64>);

fn scrub_rate_arg(s: &str) -> Result<ScrubRate, String> {
    crate::service::config::parse_rate_or_off(s).map(ScrubRate)
}

/// The service settings: footage.toml's `[service]` table, each key overridden by its flag.
fn settings(store: &Store, args: &ServeArgs) -> anyhow::Result<Settings> {
    let mut s = match &store.config().service {
        Some(table) => table
            .settings()
            .map_err(|e| anyhow::anyhow!("footage.toml: {e}"))?,
        None => Settings::default(),
    };
    if let Some(v) = args.retention_every {
        s.retention_every = v.0;
    }
    if let Some(v) = args.scrub_rate {
        s.scrub_rate = v.0;
    }
    if let Some(v) = args.checkpoint_every {
        s.checkpoint_every = v.0;
    }
    if let Some(v) = args.publish_head_every {
        s.publish_head_every = v.0;
    }
    if let Some(v) = args.disk_check_every {
        s.disk_check_every = v.0;
    }
    if let Some(v) = args.restore_rate {
        s.restore_rate = v.0;
    }
    if let Some(v) = args.restore_every {
        s.restore_every = v.0.ok_or_else(|| {
            anyhow::anyhow!("--restore-every cannot be off (use --restore-rate off)")
        })?;
    }
    if let Some(v) = args.fleet_publish_every {
        s.fleet_publish_every = v.0;
    }
    if let Some(v) = &args.fleet_station {
        s.fleet_station = Some(v.clone());
    }
    s.fleet_publish().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(v) = args.drain_timeout {
        s.drain_timeout =
            v.0.ok_or_else(|| anyhow::anyhow!("--drain-timeout cannot be off"))?;
    }
    Ok(s)
}

pub fn run(store: Store, args: ServeArgs, local_actor: String) -> anyhow::Result<i32> {
    let settings = settings(&store, &args)?;
    let drain_timeout = settings.drain_timeout;
    let bulk_nice = settings.bulk_nice;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ops = Arc::new(Ops::default());
    let notifier = Arc::new(Notifier::from_env());
    let opts = ServerOptions {
        addr: args.addr,
        local_actor,
        log_requests: !args.quiet,
        // The service's audit_head job publishes (its state is in /api/stats).
        publish_head_every: None,
        drain_timeout,
        ops: Some(Arc::clone(&ops)),
        bulk_nice,
        ..ServerOptions::default()
    };
    store.set_upload_options(crate::UploadOptions {
        expires_after: args
            .upload_expires
            .0
            .unwrap_or(std::time::Duration::from_secs(100 * 365 * 86_400)),
        ..store.upload_options()
    });
    let service = Service::start(&store, settings, &ops)?;
    register_uploads(&ops, &store);
    register_read_cache(&ops, &store);
    let watcher = match &args.watch {
        Some(dir) => {
            // The audit actor names the folder absolutely (`watch:/srv/dock`), however given.
            let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            let w = crate::watch::Watcher::start(
                &store,
                crate::watch::WatchOptions {
                    dir: dir.clone(),
                    settle: args.watch_settle,
                    interval: args.watch_interval,
                    actor: crate::watch::default_actor(dir, Some(&super::os_identity())),
                    bulk_nice,
                },
            )?;
            register_watch(&ops, w.stats_handle());
            Some(w)
        }
        None => None,
    };
    let served = rt.block_on(async {
        let signalled = shutdown_signal()?;
        let server = Server::bind(store.clone(), opts).await?;
        let addr = server.local_addr();
        // The control channel: commands from other shells (src/control/), and the service's
        // state for `footage stats` beside it.
        let control = crate::control::ControlServer::start(
            store.clone(),
            crate::control::ControlOptions {
                run: Some(super::beside::service_runner()),
                status: Some({
                    let ops = Arc::clone(&ops);
                    Arc::new(move || ops.status())
                }),
                bulk_nice,
                ..crate::control::ControlOptions::default()
            },
        )?;
        if control.stale_replaced() {
            tracing::warn!(
                socket = %control.socket_path().display(),
                "replaced a stale control socket (a service that was killed)"
            );
        }
        // Unfinished uploads past their expiry become dead space (hourly, and at start).
        let expiry = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let s = store.clone();
                    match tokio::task::spawn_blocking(move || s.expire_uploads()).await {
                        Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "expired unfinished uploads"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "expiring unfinished uploads failed"),
                        _ => {}
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
            })
        };
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
            tracing::warn!(
                "footage serve: this store requires access tokens but has none: every request is refused until one is added (`footage token add NAME`) or authentication is turned off (`footage token disable-auth`)"
            );
        } else if tokens == 0 {
            tracing::warn!(
                "footage serve: no access tokens: anyone on this machine can use http://{addr}/ (add one with `footage token add NAME`)"
            );
        }
        tracing::info!(addr = %addr, store = %store.root().display(), "serving");
        notifier.notify(&format!("READY=1\nSTATUS=serving on http://{addr}"));
        let watchdog = notifier.watchdog_every().map(|every| {
            let n = Arc::clone(&notifier);
            tokio::spawn(async move {
                loop {
                    n.notify("WATCHDOG=1");
                    tokio::time::sleep(every).await;
                }
            })
        });
        let draining = {
            let ops = Arc::clone(&ops);
            let notifier = Arc::clone(&notifier);
            async move {
                signalled.await;
                ops.start_draining();
                notifier.notify("STOPPING=1\nSTATUS=draining: finishing requests in flight");
                tracing::info!(
                    drain_timeout_s = drain_timeout.as_secs(),
                    "stopping: no new connections or uploads; draining"
                );
            }
        };
        let r = server.run(draining).await;
        if let Some(w) = watchdog {
            w.abort();
        }
        expiry.abort();
        // No new commands; running ones finish; the socket goes (before the store closes).
        tokio::task::block_in_place(|| control.stop());
        r?;
        anyhow::Ok(())
    });
    drop(rt);
    // Stops the watcher: an ingest in progress is left unacknowledged, its video in DIR.
    drop(watcher);
    notifier.notify("STATUS=stopping background jobs");
    service.stop();
    drop(service);
    notifier.notify("STATUS=closing the store");
    let closed = store.close();
    match &closed {
        Ok(()) => tracing::info!("store closed (final checkpoint written)"),
        Err(e) => tracing::error!(error = %e, "closing the store failed"),
    }
    served?;
    closed?;
    Ok(super::EXIT_OK)
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called (not when
/// the future is first polled): a SIGTERM that arrives right after `READY=1` must drain, not
/// kill the process with the default action.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The dock folder's state in `/api/stats` (and `footage stats` beside the service) and its
/// counters in `/metrics`.
fn register_watch(ops: &Ops, stats: crate::watch::WatchStatsHandle) {
    use crate::service::Sample;
    let s = stats.clone();
    ops.register_status(
        "watch",
        Arc::new(move || serde_json::to_value(s.snapshot()).unwrap_or_default()),
    );
    ops.metrics.register(
        "watch",
        Arc::new(move || {
            let w = stats.snapshot();
            vec![
                Sample::gauge(
                    "footage_watch_pending",
                    "Videos in the dock folder not yet taken",
                    w.pending as f64,
                ),
                Sample::counter(
                    "footage_watch_done_total",
                    "Videos from the dock folder ingested and moved to done/ (duplicates included)",
                    w.done,
                ),
                Sample::counter(
                    "footage_watch_duplicates_total",
                    "Videos from the dock folder the store already had",
                    w.duplicates,
                ),
                Sample::counter(
                    "footage_watch_failed_total",
                    "Videos from the dock folder moved to failed/",
                    w.failed,
                ),
                Sample::counter(
                    "footage_watch_bytes_total",
                    "Video bytes ingested from the dock folder",
                    w.bytes,
                ),
            ]
        }),
    );
}

/// The read cache's counters in `footage stats` beside the service (the service owns the
/// cache; a read-only open has none). `/api/stats` has them in the store's own `cache`, and
/// `/metrics` from `service::store_samples`.
fn register_read_cache(ops: &Ops, store: &Store) {
    let s = store.clone();
    ops.register_status(
        "read_cache",
        Arc::new(move || serde_json::to_value(s.read_cache_stats()).unwrap_or_default()),
    );
}

/// Upload sessions' counters in `/metrics` and `/api/stats` (the list itself, which names
/// officers, is only at `GET /api/uploads`, audited).
fn register_uploads(ops: &Ops, store: &Store) {
    use crate::service::Sample;
    let s = store.clone();
    ops.register_status(
        "uploads",
        Arc::new(move || serde_json::to_value(s.upload_stats()).unwrap_or_default()),
    );
    let s = store.clone();
    ops.metrics.register(
        "uploads",
        Arc::new(move || {
            let u = s.upload_stats();
            vec![
                Sample::gauge(
                    "footage_upload_sessions_open",
                    "Resumable uploads in progress",
                    u.sessions_open as f64,
                ),
                Sample::counter(
                    "footage_upload_sessions_created_total",
                    "Resumable uploads created",
                    u.created_total,
                ),
                Sample::counter(
                    "footage_upload_sessions_completed_total",
                    "Resumable uploads completed (a durable segment)",
                    u.completed_total,
                ),
                Sample::counter(
                    "footage_upload_sessions_terminated_total",
                    "Resumable uploads terminated by the client",
                    u.terminated_total,
                ),
                Sample::counter(
                    "footage_upload_sessions_expired_total",
                    "Resumable uploads removed unfinished at their expiry",
                    u.expired_total,
                ),
                Sample::counter(
                    "footage_upload_bytes_total",
                    "Upload bytes made durable and acknowledged",
                    u.bytes_received_total,
                ),
            ]
        }),
    );
}
