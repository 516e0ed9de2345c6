//! What the control server does with the two requests that carry more than a reply: a
//! segment's bytes stored as the caller (`serve_segment`) and a read-only open's audit
//! entries appended to the log (`relay_audit`).
//!
//! Invariants: a segment is read to its empty end frame even after a store error, so the
//! connection stays usable; relayed entries are accesses only (a change is refused), recorded
//! under the claimed actor with the peer's OS identity.

use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::{Patient, Shared};
use crate::control::peer::Peer;
use crate::control::protocol::{self, Claim, Frame, Reply, Stored};
use crate::control::ControlError;

/// Receives one segment's bytes and stores them as the caller. Every data frame up to the
/// empty one is read even after a store error, so the connection stays usable; bytes beyond
/// the stated length are a protocol error.
pub(super) fn serve_segment(
    shared: &Shared,
    stream: &mut UnixStream,
    peer: &Peer,
    meta: crate::SegmentMeta,
    length: Option<u64>,
    claim: &Claim,
) -> Result<(), ControlError> {
    let actor = crate::control::identity::audit_actor_of(
        claim.actor.as_deref(),
        claim.user.as_deref(),
        peer.uid,
        &peer.os_identity(),
    );
    crate::priority::lower_current_thread(shared.opts.bulk_nice);
    let mut failure: Option<String> = None;
    let mut writer = match shared
        .store
        .with_actor(&actor)
        .and_then(|s| s.begin_segment(meta))
    {
        Ok(w) => Some(w),
        Err(e) => {
            failure = Some(crate::control::identity::error_text(&e.into()));
            None
        }
    };
    let mut total = 0u64;
    let mut r = Patient {
        stream: &*stream,
        shared,
        stoppable: false,
        last: Instant::now(),
    };
    loop {
        r.stoppable = false;
        let data = match protocol::read_frame(&mut r)? {
            Some(Frame::Data(d)) => d,
            Some(Frame::Json(_)) => {
                return Err(ControlError::Protocol(
                    "a JSON frame inside a segment's data".into(),
                ))
            }
            None => return Err(ControlError::Closed),
        };
        if data.is_empty() {
            break;
        }
        total += data.len() as u64;
        if let Some(l) = length {
            if total > l {
                return Err(ControlError::Protocol(format!(
                    "more bytes than the {l} the segment request stated"
                )));
            }
        }
        if let Some(w) = writer.as_mut() {
            if let Err(e) = w.write(&data) {
                failure = Some(crate::control::identity::error_text(&e.into()));
                writer = None;
            }
        }
    }
    let reply = match (writer, failure) {
        (_, Some(msg)) => Reply::Error(msg),
        (Some(_), None) if length.is_some_and(|l| l != total) => Reply::Error(format!(
            "the client sent {total} of the {} bytes it stated: nothing was stored",
            length.unwrap_or_default()
        )),
        (Some(w), None) => match w.commit() {
            Ok(c) => Reply::Committed(Stored {
                id: c.id.to_string(),
                sha256: c.sha256_hex(),
                bytes: c.bytes,
                duplicate: c.duplicate,
            }),
            Err(e) => Reply::Error(crate::control::identity::error_text(&e.into())),
        },
        (None, None) => Reply::Error("the segment could not be started".into()),
    };
    protocol::write_json(stream, &reply)
}

/// Records a read-like action for a read-only open. The actor is the name the client gave
/// (an OS identity it added in brackets is dropped) with the OS identity of the peer.
pub(super) fn relay_audit(
    shared: &Shared,
    peer: &Peer,
    actor: &str,
    action: &str,
    segment: Option<u64>,
    details: &str,
) -> Result<(), String> {
    let action = crate::audit::Action::parse(action);
    if !action.is_access() {
        return Err(format!(
            "the audit relay records only read-like actions ({}), not {:?}",
            crate::audit::Action::accesses()
                .collect::<Vec<_>>()
                .join(", "),
            action.name()
        ));
    }
    let name = match actor.find(" (os:") {
        Some(i) if actor.ends_with(')') => actor.get(..i).unwrap_or(actor),
        _ => actor,
    };
    // A read-only open names its actor as a local command does: a name, or `uid:N` of its
    // own uid; never a built-in actor of the audit log.
    if name != format!("uid:{}", peer.uid) && crate::server::tokens::is_reserved(name) {
        return Err(format!(
            "the actor {name:?} is reserved for a built-in actor of the audit log"
        ));
    }
    let full = format!("{name} ({})", peer.os_identity());
    let details = serde_json::from_str(details)
        .unwrap_or_else(|_| serde_json::Value::String(details.to_string()));
    shared
        .store
        .audit(&full, action, segment, details)
        .map_err(|e| crate::control::identity::error_text(&e.into()))
}
