//! The local control channel of `footage serve`: a Unix stream socket in the store directory
//! through which commands that change the store are carried out by the running service
//! (docs/DESIGN.md §23, wire format docs/FORMAT.md §21).
//!
//! - [`socket`]: where the socket lives (`<store>/control.sock`, reached through
//!   `/proc/self/fd/N` of the directory when the path is too long for `sun_path`), its atomic
//!   creation with mode 0660 and the store directory's group, stale-socket replacement.
//! - [`peer`]: who is on the other end (`SO_PEERCRED`), and whether they may use the channel.
//! - [`protocol`]: frames, requests and replies; every frame is bounded.
//! - [`server`]: the listener threads of the service: limits, idle timeout, shutdown.
//! - [`client`]: [`ControlClient`], used by the CLI when the store is locked, and by
//!   read-only opens to relay their audit entries.
//!
//! Invariants: the service trusts nothing a client says about its identity (the OS identity
//! in the audit log comes from the kernel's peer credentials); the service never opens a path
//! a client names (ingest bytes are streamed by the client); a misbehaving client costs at
//! most one connection slot until its idle timeout, and never ends the service.

pub mod client;
pub mod identity;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod socket;

pub use client::ControlClient;
pub use peer::Peer;
pub use protocol::{Claim, Reply, Request, Stored, PROTOCOL_VERSION};
pub use server::{ControlOptions, ControlServer, RunCommand, StatusHook};
pub use socket::SOCKET_FILE;

/// What can go wrong on the control channel.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No service listens: no socket file, or a stale one (its service was killed).
    #[error("no footage serve answers on {path}")]
    NoService { path: String },
    /// The socket file's mode or the service refused this user.
    #[error("{0}")]
    Refused(String),
    /// A frame or request that breaks the protocol.
    #[error("control protocol: {0}")]
    Protocol(String),
    /// The service closed the connection before answering.
    #[error("the service closed the control connection before answering (is it stopping?)")]
    Closed,
    /// The service answered the request with an error.
    #[error("{0}")]
    Service(String),
    #[error("control channel: {0}")]
    Io(#[from] std::io::Error),
}

/// A control-channel error where the engine's [`crate::Error`] is expected (an `AuditSink`
/// callback): carried whole, so its message and kind reach the caller.
impl From<ControlError> for crate::Error {
    fn from(e: ControlError) -> Self {
        crate::Error::External(Box::new(e))
    }
}
