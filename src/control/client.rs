//! The client side of the control channel: [`ControlClient`].
//!
//! Invariants: the client opens every file itself and sends only metadata and bytes (the
//! service never opens a path a caller named); it states each segment's length when it knows
//! it, and never sends more; it reports the service's own error text unchanged, so a command
//! carried out by the service fails with the same `error: ...` line as a local one.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::protocol::{self, Claim, Reply, Request, Stored, MAX_DATA};
use super::{socket, ControlError};
use crate::meta::SegmentMeta;

/// A connection to the control channel of the `footage serve` that owns a store. It may be
/// shared between threads (an audit sink of a read-only open is): requests are serialised.
pub struct ControlClient {
    root: PathBuf,
    stream: Mutex<UnixStream>,
}

impl ControlClient {
    /// Connects to the service of the store in `root`. [`ControlError::NoService`] when none
    /// listens (no socket, or a stale one); [`ControlError::Refused`] when the socket's mode
    /// keeps this user out.
    pub fn connect(root: &Path) -> Result<ControlClient, ControlError> {
        Ok(ControlClient {
            root: root.to_path_buf(),
            stream: Mutex::new(socket::connect(root)?),
        })
    }

    /// The store directory this client talks about.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The service's state: pid, start time, version, store, counters, and what the service
    /// adds under `"service"`.
    pub fn status(&self) -> Result<serde_json::Value, ControlError> {
        let mut s = self.stream.lock();
        send(&mut s, &Request::Status)?;
        match protocol::read_reply(&mut *s)? {
            Reply::Status(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Has the service run a CLI command (`argv` as the client's own, program name first).
    /// Each line the command prints goes to `line(is_stderr, text)`; returns its exit code.
    pub fn run(
        &self,
        argv: Vec<String>,
        claim: Claim,
        pretty: bool,
        line: &mut dyn FnMut(bool, &str) -> std::io::Result<()>,
    ) -> Result<i32, ControlError> {
        let mut s = self.stream.lock();
        send(
            &mut s,
            &Request::Run {
                argv,
                claim,
                pretty,
            },
        )?;
        loop {
            match protocol::read_reply(&mut *s)? {
                Reply::Out(text) => line(false, &text)?,
                Reply::Err(text) => line(true, &text)?,
                Reply::Exit(code) => return Ok(code),
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Starts sending one segment as `claim`; `length` is the number of bytes that will follow
    /// when known.
    pub fn begin_segment(
        &self,
        meta: SegmentMeta,
        length: Option<u64>,
        claim: Claim,
    ) -> Result<RemoteSegment<'_>, ControlError> {
        let mut s = self.stream.lock();
        send(
            &mut s,
            &Request::Segment {
                meta,
                length,
                claim,
            },
        )?;
        Ok(RemoteSegment {
            stream: s,
            broken: false,
        })
    }

    /// Appends one read-like audit entry through the service (the relay of read-only opens;
    /// the signature of `AuditSink::append`). The service records `actor` with the OS
    /// identity of this process; it refuses actions that are not read-like
    /// ([`crate::audit::Action::is_access`]). A connection the service closed is reopened once.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        segment: Option<u64>,
        details: &str,
    ) -> crate::Result<()> {
        let req = Request::Audit {
            actor: actor.to_string(),
            action: action.to_string(),
            segment,
            details: details.to_string(),
        };
        let mut s = self.stream.lock();
        let first = exchange_audit(&mut s, &req);
        let result = match first {
            Err(ControlError::Io(_) | ControlError::Closed) => {
                *s = socket::connect(&self.root)?;
                exchange_audit(&mut s, &req)
            }
            other => other,
        };
        Ok(result?)
    }
}

fn exchange_audit(s: &mut UnixStream, req: &Request) -> Result<(), ControlError> {
    send(s, req)?;
    match protocol::read_reply(s)? {
        Reply::Ok(_) => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// Sends a request; if the service already closed the connection (it refused this peer),
/// its reason is read instead of reporting a broken pipe.
fn send(s: &mut UnixStream, req: &Request) -> Result<(), ControlError> {
    match protocol::write_request(s, req) {
        Err(ControlError::Io(e)) => match protocol::read_reply(s) {
            Ok(Reply::Error(msg)) => Err(ControlError::Service(msg)),
            _ => Err(ControlError::Io(e)),
        },
        r => r,
    }
}

fn unexpected(reply: Reply) -> ControlError {
    match reply {
        Reply::Error(msg) => ControlError::Service(msg),
        other => ControlError::Protocol(format!("unexpected reply from the service: {other:?}")),
    }
}

/// One segment being sent; [`RemoteSegment::commit`] waits for the service's answer.
pub struct RemoteSegment<'a> {
    stream: parking_lot::MutexGuard<'a, UnixStream>,
    broken: bool,
}

impl RemoteSegment<'_> {
    /// Sends bytes (in frames of at most [`MAX_DATA`]).
    pub fn write(&mut self, data: &[u8]) -> Result<(), ControlError> {
        for chunk in data.chunks(MAX_DATA as usize) {
            if let Err(e) = protocol::write_data(&mut *self.stream, chunk) {
                self.broken = true;
                // The service may have answered before closing: its reason is the error.
                return match protocol::read_reply(&mut *self.stream) {
                    Ok(Reply::Error(msg)) => Err(ControlError::Service(msg)),
                    _ => Err(e),
                };
            }
        }
        Ok(())
    }

    /// Ends the data and waits until the segment is durable; returns what `footage ingest`
    /// prints for it.
    pub fn commit(mut self) -> Result<Stored, ControlError> {
        if !self.broken {
            if let Err(e) = protocol::write_data(&mut *self.stream, &[]) {
                if !matches!(e, ControlError::Io(_)) {
                    return Err(e);
                }
            }
            let _ = self.stream.flush();
        }
        match protocol::read_reply(&mut *self.stream)? {
            Reply::Committed(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

// A read-only open keeps its audit sink behind an `Arc<dyn AuditSink>` used from any thread.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<ControlClient>()
};

/// A read-only open beside the service records its audited reads through the channel
/// ([`crate::Store::open_read_only_with`]).
impl crate::AuditSink for ControlClient {
    fn append(
        &self,
        actor: &str,
        action: &crate::audit::Action,
        segment: Option<u64>,
        details: &str,
    ) -> crate::Result<()> {
        self.audit(actor, action.name(), segment, details)
    }
}
