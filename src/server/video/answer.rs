//! What a video request is answered with, decided from its headers alone (pure functions):
//! the single byte range, `If-None-Match` (304), `If-Range`, 416 for anything else, and the
//! content type sniffed from a segment's first bytes.
//!
//! Invariant: one `Range` of one range is served; anything malformed, unsatisfiable or
//! multi-range is refused (416), never guessed at.

use axum::http::{header, HeaderMap, Method};

use super::STREAM_CHUNK;

/// The headers of a video request that decide its answer.
#[derive(Debug, Default, Clone)]
pub struct Ask {
    pub head: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
}

impl Ask {
    pub(super) fn of(method: &Method, headers: &HeaderMap) -> Ask {
        let get = |name| header_str(headers, name).map(str::to_string);
        Ask {
            head: method == Method::HEAD,
            range: get(header::RANGE),
            if_range: get(header::IF_RANGE),
            if_none_match: get(header::IF_NONE_MATCH),
        }
    }
}

/// What a video request is answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 304: the client's copy (`If-None-Match`) is current.
    NotModified,
    /// 416, and why.
    Refused(String),
    /// Bytes `[start, end)`: a 206 when `partial` (a `Range` applied), else a 200. A HEAD gets
    /// the same head without the body.
    Bytes { start: u64, end: u64, partial: bool },
}

/// Decides the answer to `ask` for a segment of `len` bytes with ETag `etag`.
pub fn answer(ask: &Ask, len: u64, etag: &str) -> Answer {
    if ask
        .if_none_match
        .as_deref()
        .is_some_and(|t| etag_listed(t, etag))
    {
        return Answer::NotModified;
    }
    // If-Range: the range applies only if the validator is still ours; else send it all.
    let range = match ask.if_range.as_deref() {
        Some(v) if v.trim() != etag => None,
        _ => ask.range.as_deref(),
    };
    match range_answer(range, len) {
        RangeAnswer::Whole => Answer::Bytes {
            start: 0,
            end: len,
            partial: false,
        },
        RangeAnswer::Part { start, end } => Answer::Bytes {
            start,
            end: end + 1,
            partial: true,
        },
        RangeAnswer::Unsatisfiable(why) => Answer::Refused(why),
    }
}

/// The content type of a segment from its first bytes: MP4 (an `ftyp` box) or unknown.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// Where the body of `answer` starts and the length of its first piece (None: no body).
pub(super) fn first_piece(answer: &Answer, head: bool) -> Option<(u64, usize)> {
    match *answer {
        Answer::Bytes { start, end, .. } if !head && end > start => {
            Some((start, (end - start).min(STREAM_CHUNK as u64) as usize))
        }
        _ => None,
    }
}

/// Whether an `If-None-Match` / `If-Range` list names `etag` (weak comparison; `*` matches).
fn etag_listed(value: &str, etag: &str) -> bool {
    value.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag
    })
}

/// What to send for a request's `Range`.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable(String),
}

/// Decides the range to send from the `Range` header of a segment of `len` bytes.
pub fn range_answer(range: Option<&str>, len: u64) -> RangeAnswer {
    let Some(value) = range else {
        return RangeAnswer::Whole;
    };
    let ranges = match http_range_header::parse_range_header(value) {
        Ok(r) => r,
        Err(e) => return RangeAnswer::Unsatisfiable(format!("bad Range {value:?}: {e}")),
    };
    if ranges.len() != 1 {
        return RangeAnswer::Unsatisfiable(
            "multiple ranges are not supported: ask for one range at a time".into(),
        );
    }
    match ranges.validate(len) {
        Ok(v) => match v.first() {
            Some(r) => RangeAnswer::Part {
                start: *r.start(),
                end: *r.end(),
            },
            // A suffix range of an empty segment: all of it, which is nothing.
            None => RangeAnswer::Whole,
        },
        Err(e) => RangeAnswer::Unsatisfiable(format!(
            "Range {value:?} cannot be served from {len} bytes: {e}"
        )),
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(range_answer(None, 10), Whole);
        assert_eq!(
            range_answer(Some("bytes=2-4"), 10),
            Part { start: 2, end: 4 }
        );
        assert_eq!(
            range_answer(Some("bytes=-3"), 10),
            Part { start: 7, end: 9 }
        );
        assert_eq!(
            range_answer(Some("bytes=5-"), 10),
            Part { start: 5, end: 9 }
        );
        assert_eq!(
            range_answer(Some("bytes=5-100"), 10),
            Part { start: 5, end: 9 }
        );
        for bad in [
            "bytes=10-",
            "bytes=999999999999-",
            "bytes=5-1",
            "garbage",
            "bytes=0-1,3-4",
            "bytes=",
            "bytes=-0",
            "items=0-1",
            "bytes=99999999999999999999999999999999999-",
        ] {
            assert!(
                matches!(range_answer(Some(bad), 10), Unsatisfiable(_)),
                "{bad}"
            );
        }
        assert_eq!(range_answer(Some("bytes=-5"), 0), Whole);
    }

    #[test]
    fn etags() {
        assert!(etag_listed("\"ab\"", "\"ab\""));
        assert!(etag_listed("W/\"ab\", \"cd\"", "\"ab\""));
        assert!(etag_listed("*", "\"ab\""));
        assert!(!etag_listed("\"abc\"", "\"ab\""));
    }

    #[test]
    fn answers() {
        let etag = "\"ab\"";
        let ask = |range: Option<&str>, if_range: Option<&str>, inm: Option<&str>| Ask {
            head: false,
            range: range.map(str::to_string),
            if_range: if_range.map(str::to_string),
            if_none_match: inm.map(str::to_string),
        };
        let whole = Answer::Bytes {
            start: 0,
            end: 10,
            partial: false,
        };
        let part = Answer::Bytes {
            start: 2,
            end: 5,
            partial: true,
        };
        assert_eq!(answer(&ask(None, None, None), 10, etag), whole);
        assert_eq!(answer(&ask(Some("bytes=2-4"), None, None), 10, etag), part);
        let stale = ask(Some("bytes=2-4"), Some("\"old\""), None);
        assert_eq!(answer(&stale, 10, etag), whole);
        let current = ask(Some("bytes=2-4"), Some(etag), None);
        assert_eq!(answer(&current, 10, etag), part);
        let cached = ask(Some("bytes=2-4"), None, Some(etag));
        assert_eq!(answer(&cached, 10, etag), Answer::NotModified);
        assert!(matches!(
            answer(&ask(Some("bytes=10-"), None, None), 10, etag),
            Answer::Refused(_)
        ));
        let empty = Answer::Bytes {
            start: 0,
            end: 0,
            partial: false,
        };
        assert_eq!(answer(&ask(None, None, None), 0, etag), empty);
        assert_eq!(first_piece(&empty, false), None);
        assert_eq!(first_piece(&whole, true), None, "a HEAD reads no body");
        assert_eq!(first_piece(&part, false), Some((2, 3)));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\0\0\0\x18ftypisom"), "video/mp4");
        assert_eq!(sniff(b"RIFF"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/octet-stream");
    }
}
