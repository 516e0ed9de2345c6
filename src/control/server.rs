//! The service side of the control channel: an accept thread and one thread per connection.
//!
//! Invariants:
//! - every connection's peer passes [`super::peer::check`] before a byte of it is read;
//!   refusals are answered with an `error` reply, counted, and closed;
//! - at most [`ControlOptions::max_connections`] connections are served at once (more are
//!   answered "busy" and closed); a connection that sends nothing for
//!   [`ControlOptions::idle_timeout`] (or stops reading our replies for as long) is closed;
//! - a broken frame (garbage, a length above the bound, another protocol version) ends only
//!   its own connection; nothing a client sends can panic or stop the service;
//! - [`ControlServer::stop`]: no new connection or request is taken, requests already running
//!   finish (a segment being streamed is received to its end), every connection thread is
//!   joined (so no `Store` handle of ours outlives it) and the socket file is removed.

mod handlers;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::peer::{self, Peer};
use super::protocol::{self, Claim, Frame, Reply, Request};
use super::socket::{self, BoundSocket};
use super::ControlError;
use crate::Store;
use handlers::{relay_audit, serve_segment};

/// How often a waiting thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// How long a refusal may take to write before the connection is dropped anyway.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// The service's state for the `status` request, filled by whoever runs the service (helper
/// code for background work plugs in here).
pub type StatusHook = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// One `run` request as the service's command runner sees it.
pub struct RunContext<'a> {
    pub store: &'a Store,
    pub argv: &'a [String],
    pub claim: &'a Claim,
    pub peer: &'a Peer,
    pub pretty: bool,
}

/// Carries out a `run` request (the CLI's own dispatch, src/cli/beside.rs): sends `out`/`err`
/// lines through the callback and returns the exit code.
pub type RunCommand = Arc<
    dyn Fn(&RunContext<'_>, &mut dyn FnMut(Reply) -> Result<(), ControlError>) -> i32 + Send + Sync,
>;

/// Limits and hooks of the control server.
#[derive(Clone)]
pub struct ControlOptions {
    /// Connections served at once. Default 16.
    pub max_connections: usize,
    /// A connection idle (no request, or a reply not read) this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// Carries out `run` requests; `None` refuses them.
    pub run: Option<RunCommand>,
    /// Adds the service's state to `status` replies (under `"service"`).
    pub status: Option<StatusHook>,
    /// Steps by which a connection's thread lowers its scheduling priority once it carries an
    /// ingest (bulk work, [`crate::priority`]; the thread serves only that connection, and the
    /// rest of it runs lowered too). Default [`crate::priority::BULK_NICE`].
    pub bulk_nice: i32,
}

impl Default for ControlOptions {
    fn default() -> ControlOptions {
        ControlOptions {
            max_connections: 16,
            idle_timeout: Duration::from_secs(60),
            run: None,
            status: None,
            bulk_nice: crate::priority::BULK_NICE,
        }
    }
}

/// Counters of the channel, in `status` replies.
#[derive(Debug, Default, serde::Serialize)]
pub struct ControlCounters {
    pub active: usize,
    pub accepted: u64,
    pub refused: u64,
    pub busy: u64,
    pub protocol_errors: u64,
}

struct Shared {
    store: Store,
    opts: ControlOptions,
    service_uid: u32,
    store_gid: u32,
    started: String,
    socket: String,
    stop: AtomicBool,
    active: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    protocol_errors: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The running control channel of a service.
pub struct ControlServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    socket: BoundSocket,
    stale_replaced: bool,
}

impl ControlServer {
    /// Binds `<store>/control.sock` (replacing a stale one) and starts accepting.
    pub fn start(store: Store, opts: ControlOptions) -> Result<ControlServer, ControlError> {
        let root = store.root().to_path_buf();
        let store_gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&root)?);
        let (listener, socket, stale_replaced) = socket::bind(&root)?;
        listener.set_nonblocking(true)?;
        // SAFETY: geteuid cannot fail and touches no memory.
        let service_uid = unsafe { libc::geteuid() };
        let shared = Arc::new(Shared {
            store,
            opts,
            service_uid,
            store_gid,
            started: crate::input::time::format_time(crate::now_us()),
            socket: socket.shown.display().to_string(),
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("footage-control".into())
            .spawn(move || accept_loop(&s, &listener))?;
        Ok(ControlServer {
            shared,
            accept: Some(accept),
            socket,
            stale_replaced,
        })
    }

    /// `<store>/control.sock`.
    pub fn socket_path(&self) -> &Path {
        &self.socket.shown
    }

    /// Whether a stale socket (of a killed service) was found and replaced at start.
    pub fn stale_replaced(&self) -> bool {
        self.stale_replaced
    }

    pub fn counters(&self) -> ControlCounters {
        self.shared.counters()
    }

    /// Stops taking connections and requests, lets running requests finish, joins every
    /// connection thread and removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        self.socket.remove();
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

impl Shared {
    fn counters(&self) -> ControlCounters {
        ControlCounters {
            active: self.active.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
        }
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "pid": std::process::id(),
            "started": self.started,
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": protocol::PROTOCOL_VERSION,
            "store": self.store.root().display().to_string(),
            "socket": self.socket,
            "control": self.counters(),
            "service": self.opts.status.as_ref().map(|h| h()),
        })
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &UnixListener) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => admit(shared, stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_readable(listener),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Out of descriptors and the like: keep serving, after a pause.
            Err(_) => std::thread::sleep(POLL),
        }
        shared.threads.lock().retain(|t| !t.is_finished());
    }
}

/// Waits until a connection is pending, or [`POLL`] passed.
fn wait_readable(listener: &UnixListener) {
    let mut fds = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `fds` is one valid pollfd that outlives the call.
    unsafe { libc::poll(&mut fds, 1, POLL.as_millis() as libc::c_int) };
}

/// Checks a new connection's peer and the connection limit, then serves it on its own thread.
fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    let refuse = |stream: &mut UnixStream, msg: String| {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(REFUSAL_WRITE));
        let _ = protocol::write_json(stream, &Reply::Error(msg));
    };
    let mut stream = stream;
    let peer = match Peer::of(&stream) {
        Ok(p) => p,
        Err(e) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            refuse(
                &mut stream,
                format!("cannot read the peer credentials: {e}"),
            );
            return;
        }
    };
    if let Err(msg) = peer::check(&peer, shared.service_uid, shared.store_gid) {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        refuse(&mut stream, msg);
        return;
    }
    if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.opts.max_connections {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        shared.busy.fetch_add(1, Ordering::Relaxed);
        refuse(
            &mut stream,
            format!(
                "the service is busy ({} control connections): try again",
                shared.opts.max_connections
            ),
        );
        return;
    }
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    let s = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("footage-control-conn".into())
        .spawn(move || {
            serve_connection(&s, stream, peer);
            s.active.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        Ok(t) => shared.threads.lock().push(t),
        Err(_) => {
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads from a connection with the idle timeout; while waiting for a request (`stoppable`)
/// it also gives up when the service stops.
struct Patient<'a> {
    stream: &'a UnixStream,
    shared: &'a Shared,
    stoppable: bool,
    last: Instant,
}

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match (&*self.stream).read(buf) {
                Ok(n) => {
                    self.last = Instant::now();
                    self.stoppable = false;
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.stoppable && self.shared.stop.load(Ordering::SeqCst) {
                        return Err(std::io::Error::other("the service is stopping"));
                    }
                    if self.last.elapsed() >= self.shared.opts.idle_timeout {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the connection was idle too long",
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn serve_connection(shared: &Shared, mut stream: UnixStream, peer: Peer) {
    let _ = stream.set_nonblocking(false);
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream
            .set_write_timeout(Some(shared.opts.idle_timeout))
            .is_err()
    {
        return;
    }
    loop {
        let read = {
            let mut r = Patient {
                stream: &stream,
                shared,
                stoppable: true,
                last: Instant::now(),
            };
            protocol::read_frame(&mut r)
        };
        let outcome = match read {
            Ok(None) => return,
            Ok(Some(Frame::Json(v))) => match protocol::decode_request(v) {
                Ok(req) => serve_request(shared, &mut stream, &peer, req),
                Err(e) => Err(e),
            },
            Ok(Some(Frame::Data(_))) => Err(ControlError::Protocol(
                "a data frame where a request was due".into(),
            )),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {}
            Err(ControlError::Protocol(msg)) => {
                shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
                let _ = protocol::write_json(&mut stream, &Reply::Error(msg));
                return;
            }
            Err(_) => return,
        }
    }
}

fn serve_request(
    shared: &Shared,
    stream: &mut UnixStream,
    peer: &Peer,
    req: Request,
) -> Result<(), ControlError> {
    match req {
        Request::Status => protocol::write_json(stream, &Reply::Status(shared.status())),
        Request::Run {
            argv,
            claim,
            pretty,
        } => {
            let Some(run) = &shared.opts.run else {
                return protocol::write_json(
                    stream,
                    &Reply::Error("this service does not run commands".into()),
                );
            };
            let ctx = RunContext {
                store: &shared.store,
                argv: &argv,
                claim: &claim,
                peer,
                pretty,
            };
            let mut emit = |reply: Reply| protocol::write_json(&mut *stream, &reply);
            let code = run(&ctx, &mut emit);
            protocol::write_json(stream, &Reply::Exit(code))
        }
        Request::Segment {
            meta,
            length,
            claim,
        } => serve_segment(shared, stream, peer, meta, length, &claim),
        Request::Audit {
            actor,
            action,
            segment,
            details,
        } => {
            let reply = match relay_audit(shared, peer, &actor, &action, segment, &details) {
                Ok(()) => Reply::Ok(true),
                Err(msg) => Reply::Error(msg),
            };
            protocol::write_json(stream, &reply)
        }
    }
}
