//! Readiness and liveness notification to systemd (`Type=notify`): `READY=1` once the server
//! accepts connections, `STATUS=...` lines, `STOPPING=1` when the drain starts, and
//! `WATCHDOG=1` every half `WatchdogSec` when the unit sets one (`$WATCHDOG_USEC`).
//!
//! Invariants: without `$NOTIFY_SOCKET` every call does nothing; a failure to notify is logged
//! and never stops the service (systemd then times the start out, which says more than we
//! could); the socket is a Unix datagram socket named by a path or, with a leading `@`, by an
//! abstract name; each message is one datagram of `KEY=VALUE` lines.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to `$NOTIFY_SOCKET`, or nothing when the variable is not set.
pub struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        Notifier {
            target: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `msg` (newline-separated `KEY=VALUE` lines).
    pub fn notify(&self, msg: &str) {
        let Some(target) = &self.target else { return };
        if let Err(e) = send(target, msg) {
            tracing::warn!(socket = %target, error = %e, "cannot notify systemd");
        }
    }

    /// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process only when
    /// `$WATCHDOG_PID` names it), halved as sd_watchdog_enabled(3) advises.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.target.as_ref()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        let us: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        (us > 0).then(|| Duration::from_micros(us / 2))
    }
}

fn send(target: &str, msg: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(msg.as_bytes(), &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "abstract socket names exist only on Linux",
            ));
        }
    }
    sock.send_to(msg.as_bytes(), target)?;
    Ok(())
}
