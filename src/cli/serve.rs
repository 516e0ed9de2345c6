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
    /// Unfinished resumable uploads (/api/uploads) are removed this long after their creation
    /// (e.g. 168h; `off` for never)
    #[arg(long, default_value = "168h", value_name = "INTERVAL", value_parser = interval_arg)]
    pub upload_expires: Interval,
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
    store.set_upload_options(crate::UploadOptions {
        expires_after: args
            .upload_expires
            .0
            .unwrap_or(std::time::Duration::from_secs(100 * 365 * 86_400)),
        ..store.upload_options()
    });
    let scrub = match args.scrub_rate.0 {
        Some(rate) => Some(store.start_scrub(crate::ScrubOptions {
            bytes_per_sec: rate,
            ..crate::ScrubOptions::default()
        })?),
        None => None,
    };
    let served = rt.block_on(async {
        let server = Server::bind(store.clone(), opts).await?;
        let addr = server.local_addr();
        let tokens = crate::server::TokenSet::load(store.root())?.len();
        println_out(
            &serde_json::json!({
                "listening": format!("http://{addr}"),
                "store": store.root().display().to_string(),
                "tokens": tokens,
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
        server.run(shutdown_signal()).await?;
        anyhow::Ok(())
    });
    drop(rt);
    drop(scrub);
    let closed = store.close();
    served?;
    closed?;
    Ok(super::EXIT_OK)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("footage serve: stopping");
}
