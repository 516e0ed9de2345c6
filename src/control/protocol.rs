//! The control channel's wire format (docs/FORMAT.md §21): frames, requests and replies.
//!
//! A frame is one kind byte, a little-endian `u32` payload length and the payload:
//! [`KIND_JSON`] carries one JSON object (at most [`MAX_JSON`] bytes), [`KIND_DATA`] raw
//! segment bytes (at most [`MAX_DATA`] bytes; an empty one ends a segment's data).
//!
//! Invariants: no frame longer than its kind's bound is ever read into memory (the length is
//! checked before the payload is read); an unknown kind byte, a bound exceeded, a request
//! without the protocol version or with another one is a [`ControlError::Protocol`], never a
//! panic; everything here is pure encoding over `Read`/`Write` (no sockets, no store).

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::ControlError;
use crate::meta::SegmentMeta;

/// Version of the protocol; every request carries it as `"v"`. A service refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;
/// Kind byte of a frame holding one JSON object (`'J'`).
pub const KIND_JSON: u8 = b'J';
/// Kind byte of a frame holding raw segment bytes (`'D'`).
pub const KIND_DATA: u8 = b'D';
/// Largest JSON payload: room for any argv, and for a segment's metadata with its GPS track
/// (a 12-hour track at 1 Hz is about 2.5 MB as JSON).
pub const MAX_JSON: u32 = 4 << 20;
/// Largest data payload: the chunk the CLI reads files in.
pub const MAX_DATA: u32 = 1 << 20;
/// Bytes before a frame's payload: the kind byte and the length.
pub const FRAME_HEADER: usize = 5;

/// One frame as read.
#[derive(Debug)]
pub enum Frame {
    Json(serde_json::Value),
    Data(Vec<u8>),
}

/// Writes a JSON frame.
pub fn write_json(w: &mut dyn Write, value: &impl Serialize) -> Result<(), ControlError> {
    let body = serde_json::to_vec(value).map_err(|e| ControlError::Protocol(e.to_string()))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| *n <= MAX_JSON)
        .ok_or_else(|| {
            ControlError::Protocol(format!(
                "a message of {} bytes is above the limit of {MAX_JSON}",
                body.len()
            ))
        })?;
    write_frame(w, KIND_JSON, len, &body)
}

/// Writes a data frame (`data` at most [`MAX_DATA`] bytes; empty ends a segment).
pub fn write_data(w: &mut dyn Write, data: &[u8]) -> Result<(), ControlError> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|n| *n <= MAX_DATA)
        .ok_or_else(|| {
            ControlError::Protocol(format!(
                "a data frame of {} bytes is above the limit of {MAX_DATA}",
                data.len()
            ))
        })?;
    write_frame(w, KIND_DATA, len, data)
}

fn write_frame(w: &mut dyn Write, kind: u8, len: u32, body: &[u8]) -> Result<(), ControlError> {
    let mut head = [0u8; FRAME_HEADER];
    head[0] = kind;
    head[1..].copy_from_slice(&len.to_le_bytes());
    w.write_all(&head)?;
    w.write_all(body)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)`: the stream ended cleanly before a frame began.
pub fn read_frame(r: &mut dyn Read) -> Result<Option<Frame>, ControlError> {
    let mut head = [0u8; FRAME_HEADER];
    let mut got = 0;
    while got < FRAME_HEADER {
        let n = r.read(&mut head[got..])?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(ControlError::Protocol(
                "the connection ended inside a frame header".into(),
            ));
        }
        got += n;
    }
    let kind = head[0];
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let max = match kind {
        KIND_JSON => MAX_JSON,
        KIND_DATA => MAX_DATA,
        other => {
            return Err(ControlError::Protocol(format!(
                "unknown frame kind 0x{other:02x} (not a footage control client, or another \
                 protocol)"
            )))
        }
    };
    if len > max {
        return Err(ControlError::Protocol(format!(
            "a frame of {len} bytes is above the limit of {max} for its kind"
        )));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ControlError::Protocol("the connection ended inside a frame".into())
        } else {
            ControlError::from(e)
        }
    })?;
    Ok(Some(match kind {
        KIND_JSON => {
            Frame::Json(serde_json::from_slice(&body).map_err(|e| {
                ControlError::Protocol(format!("a JSON frame that is not JSON: {e}"))
            })?)
        }
        _ => Frame::Data(body),
    }))
}

/// What the caller claims about who it is: checked and completed by the service, which adds
/// the OS identity from the socket's peer credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    /// `--actor` / `FOOTAGE_ACTOR`, as the client's parser accepted it.
    pub actor: Option<String>,
    /// The client's `$USER` (else `$LOGNAME`): the actor when none is named.
    pub user: Option<String>,
}

/// A request (client → service): the first JSON frame of each exchange.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Runs a store-changing CLI command; answered by `out`/`err` lines and one `exit`.
    Run {
        argv: Vec<String>,
        #[serde(flatten)]
        claim: Claim,
        /// Whether the client's stdout is a terminal (single JSON objects are pretty-printed).
        pretty: bool,
    },
    /// Stores one segment: followed by data frames and an empty data frame; answered by
    /// `committed` or `error`.
    Segment {
        meta: SegmentMeta,
        /// Bytes that follow, when the client knows (a file); the service stops at it.
        length: Option<u64>,
        #[serde(flatten)]
        claim: Claim,
    },
    /// Appends one read-like audit entry; answered by `ok` or `error`.
    Audit {
        /// The actor named by the read-only opener (an OS identity in brackets is dropped:
        /// the service's own, from the peer credentials, replaces it).
        actor: String,
        action: String,
        segment: Option<u64>,
        details: String,
    },
    /// The service's state; answered by `status`.
    Status,
}

/// The request with its version, as sent.
#[derive(Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    request: &'a Request,
}

/// Writes a request with the protocol version.
pub fn write_request(w: &mut dyn Write, request: &Request) -> Result<(), ControlError> {
    write_json(
        w,
        &Versioned {
            v: PROTOCOL_VERSION,
            request,
        },
    )
}

/// Decodes a request frame: checks the version first (so a client of another version hears
/// about the version, not about an unknown field), then the request.
pub fn decode_request(value: serde_json::Value) -> Result<Request, ControlError> {
    let serde_json::Value::Object(mut map) = value else {
        return Err(ControlError::Protocol("a request is a JSON object".into()));
    };
    match map.remove("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(ControlError::Protocol(format!(
                "protocol version {v} is not spoken here (this service speaks version \
                 {PROTOCOL_VERSION}: use the footage binary of the same release)"
            )))
        }
        None => {
            return Err(ControlError::Protocol(
                "a request without a protocol version (\"v\")".into(),
            ))
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| ControlError::Protocol(format!("bad request: {e}")))
}

/// What the service answers with for one stored segment: the fields `footage ingest` prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub sha256: String,
    pub bytes: u64,
    pub duplicate: bool,
}

/// A reply (service → client).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// A line the command printed on stdout.
    Out(String),
    /// A line the command printed on stderr.
    Err(String),
    /// The command's exit code: the last reply of a `run`.
    Exit(i32),
    /// The segment is durable (or a duplicate of one that is).
    Committed(Stored),
    /// The audit entry is written.
    Ok(bool),
    /// The service's state.
    Status(serde_json::Value),
    /// The request was refused or failed; the exchange (and for a protocol error the
    /// connection) ends.
    Error(String),
}

/// Reads the next reply. A closed connection is [`ControlError::Closed`].
pub fn read_reply(r: &mut dyn Read) -> Result<Reply, ControlError> {
    match read_frame(r)? {
        Some(Frame::Json(v)) => serde_json::from_value(v)
            .map_err(|e| ControlError::Protocol(format!("bad reply from the service: {e}"))),
        Some(Frame::Data(_)) => Err(ControlError::Protocol(
            "the service sent a data frame where a reply was due".into(),
        )),
        None => Err(ControlError::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_are_checked_before_reading() {
        let mut buf = Vec::new();
        write_request(&mut buf, &Request::Status).unwrap();
        write_data(&mut buf, b"abc").unwrap();
        write_data(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        let Some(Frame::Json(v)) = read_frame(&mut r).unwrap() else {
            panic!("json")
        };
        assert_eq!(decode_request(v).unwrap(), Request::Status);
        assert!(matches!(read_frame(&mut r).unwrap(), Some(Frame::Data(d)) if d == b"abc"));
        assert!(matches!(read_frame(&mut r).unwrap(), Some(Frame::Data(d)) if d.is_empty()));
        assert!(read_frame(&mut r).unwrap().is_none());

        // A huge length is refused from the header alone (the payload is never allocated).
        let mut huge = vec![KIND_DATA];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(ControlError::Protocol(m)) if m.contains("limit")
        ));
        assert!(matches!(
            read_frame(&mut &b"GET / HTTP/1.1\r\n"[..]),
            Err(ControlError::Protocol(m)) if m.contains("unknown frame kind")
        ));
        assert!(read_frame(&mut &[KIND_JSON, 1][..]).is_err());
        assert!(write_data(&mut Vec::new(), &vec![0; MAX_DATA as usize + 1]).is_err());
    }

    #[test]
    fn requests_of_another_version_or_shape_are_refused() {
        let v2 = serde_json::json!({"v": 2, "op": "status"});
        assert!(
            matches!(decode_request(v2), Err(ControlError::Protocol(m)) if m.contains("version 2"))
        );
        assert!(decode_request(serde_json::json!({"op": "status"})).is_err());
        assert!(decode_request(serde_json::json!({"v": 1, "op": "init"})).is_err());
        assert!(decode_request(serde_json::json!([1, 2])).is_err());
        let run = Request::Run {
            argv: vec!["footage".into(), "hold".into()],
            claim: Claim {
                actor: Some("alice".into()),
                user: None,
            },
            pretty: false,
        };
        let mut buf = Vec::new();
        write_request(&mut buf, &run).unwrap();
        let Some(Frame::Json(v)) = read_frame(&mut &buf[..]).unwrap() else {
            panic!("json")
        };
        assert_eq!(decode_request(v).unwrap(), run);
    }
}
