//! Who is asking: bearer tokens, video tickets, and the checks made before any handler runs.
//!
//! Invariants:
//! - once the store has a token, every request except `/healthz` and the static review page
//!   (which holds no footage data) carries a valid `Authorization: Bearer` token or, for a
//!   video URL only, a ticket made for that exact path by a token that still exists; anything
//!   else is 401;
//! - video tickets are kept per token name, at most `max_tickets_per_user` each; issuing one
//!   costs O(1) and drops only the issuer's own expired or oldest tickets ([`Tickets`]);
//! - the tokens file is re-read whenever it changes on disk (a removed token stops working at
//!   the next request); if it cannot be read, every request is refused (503), never let in;
//! - a store that requires tokens ([`tokens::auth_required`]: it has had one) is never served
//!   without one: with `tokens.json` missing every request is refused (503), with no token left
//!   (401), until `footage token disable-auth`; once a server has seen the store require
//!   tokens it requires them until it stops (that command cannot run while it does);
//! - a server bound to a non-loopback address never runs without tokens: if the last token is
//!   removed while it runs, every request is refused (401);
//! - a token bearing a reserved (built-in actor) name is refused (401); the caller's role
//!   decides what it may change (`api.rs`);
//! - an `ingest` token (a dock's) reaches nothing but the upload endpoints and `whoami`
//!   ([`ingest_may`], default deny: 403 before any handler runs, so a new endpoint is closed
//!   to it until listed here); which uploads it may touch is decided in `tus.rs` (its own).
//! - without tokens (loopback only), the `Host` header must name a loopback host (against DNS
//!   rebinding) and a change with a cross-origin `Origin` is refused (CSRF); on every server
//!   responses carry `Cross-Origin-Resource-Policy: same-origin`, so no other site can embed
//!   a video or read a response.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rand::TryRngCore;

use super::tokens::{self, tokens_path, Role, TokenSet};
use super::{ApiError, App};

/// How long a video ticket works.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(4 * 3600);
/// Most tickets kept at once per token name; past this a user's own oldest ticket is dropped.
/// A reviewer opens one ticket per video watched: a thousand in four hours is far beyond use.
pub const MAX_TICKETS_PER_USER: usize = 1_000;

/// The identity a request acts as, put into the request's extensions by [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (the actor of changes), or the server's local actor without tokens.
    pub name: String,
    pub read_only: bool,
    /// What the caller may do; the local operator (no tokens) has every role.
    pub role: Role,
    /// True when a token (or a ticket made by one) identified the caller.
    pub by_token: bool,
    /// SHA-256 (hex) of the caller's token, to make tickets that die with it.
    token_sha256: Option<String>,
}

impl Caller {
    /// A caller identified by a token (for tests of [`Tickets`]).
    #[doc(hidden)]
    pub fn for_tests(name: &str, read_only: bool, token_sha256: &str) -> Caller {
        Caller {
            name: name.into(),
            read_only,
            role: Role::from_read_only(read_only),
            by_token: true,
            token_sha256: Some(token_sha256.into()),
        }
    }
}

/// Identity of the tokens file as last read: changes when it is replaced.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

/// The tokens file, re-read when it changes.
pub struct TokenCache {
    path: PathBuf,
    root: PathBuf,
    cached: Mutex<(Stamp, Option<Arc<TokenSet>>)>,
    /// Set when the file was re-read: token changes may wait to be audited.
    reloaded: std::sync::atomic::AtomicBool,
    /// Set once the store was seen to require tokens; never cleared while the server runs.
    required: std::sync::atomic::AtomicBool,
}

fn stamp(path: &std::path::Path) -> std::io::Result<Stamp> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl TokenCache {
    pub fn new(root: PathBuf, initial: TokenSet) -> TokenCache {
        let path = tokens_path(&root);
        let s = stamp(&path).ok().flatten();
        let required = !initial.is_empty() || tokens::auth_required(&root).unwrap_or(true);
        TokenCache {
            path,
            root,
            cached: Mutex::new((s, Some(Arc::new(initial)))),
            reloaded: std::sync::atomic::AtomicBool::new(false),
            required: std::sync::atomic::AtomicBool::new(required),
        }
    }

    /// Whether the file was re-read since the last call.
    fn take_reloaded(&self) -> bool {
        self.reloaded.swap(false, Ordering::Relaxed)
    }

    /// Why a request must be refused although the token set is empty, if it must: the store
    /// requires tokens (it has had some) and none can be presented.
    pub fn refusal_without_tokens(&self) -> Option<ApiError> {
        use std::sync::atomic::Ordering;
        let required = self.required.load(Ordering::Relaxed)
            || tokens::auth_required(&self.root).unwrap_or(true);
        if !required {
            return None;
        }
        self.required.store(true, Ordering::Relaxed);
        let off = "or turn authentication off on purpose with `footage token disable-auth` \
                   (with the server stopped; it is audited)";
        Some(if self.path.exists() {
            ApiError::Unauthorized(format!(
                "this store requires access tokens but none is left (the last was removed): \
                 add one with `footage token add NAME`, {off}"
            ))
        } else {
            ApiError::Unavailable(format!(
                "{} is missing but this store requires access tokens (it has had them): \
                 every request is refused until it is restored, a token is added with \
                 `footage token add NAME`, {off}",
                self.path.display()
            ))
        })
    }

    /// The current tokens; re-reads the file if it changed since the last call.
    pub fn current(&self) -> Result<Arc<TokenSet>, ApiError> {
        let unreadable =
            |e: String| ApiError::Unavailable(format!("the tokens file is unreadable: {e}"));
        let now = stamp(&self.path).map_err(|e| unreadable(e.to_string()))?;
        let mut c = self.cached.lock();
        if let (s, Some(set)) = &*c {
            if *s == now {
                return Ok(Arc::clone(set));
            }
        }
        match TokenSet::load(&self.root) {
            Ok(set) => {
                if !set.is_empty() {
                    self.required
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let set = Arc::new(set);
                *c = (now, Some(Arc::clone(&set)));
                self.reloaded.store(true, Ordering::Relaxed);
                Ok(set)
            }
            Err(e) => {
                *c = (None, None);
                Err(unreadable(e.to_string()))
            }
        }
    }
}

struct Ticket {
    path: String,
    name: String,
    token_sha256: String,
    read_only: bool,
    expires: Instant,
}

/// The tickets and, per token name, the keys of that user's tickets, oldest first. Every
/// ticket lives [`TICKET_LIFETIME`], so issue order is expiry order and both expiry and the
/// per-user cap only ever take from the front of one user's queue.
#[derive(Default)]
struct Table {
    map: HashMap<String, Ticket>,
    by_user: HashMap<String, VecDeque<String>>,
}

/// Short-lived capability URLs for `<video>` elements, which cannot send headers.
///
/// Invariants: a user holds at most `cap` tickets and issuing one never removes another
/// user's; an issue touches O(1) entries amortised (each key is pushed once and popped once),
/// so the lock is held for constant time whatever the table holds. Memory is at most
/// `cap` tickets per token name that has asked for one.
pub struct Tickets {
    table: Mutex<Table>,
    cap: usize,
    /// Entries inserted or removed so far (doc-hidden, for tests of the cost per issue).
    work: AtomicU64,
}

impl Tickets {
    /// An empty table keeping at most `cap_per_user` tickets per token name.
    pub fn new(cap_per_user: usize) -> Tickets {
        Tickets {
            table: Mutex::new(Table::default()),
            cap: cap_per_user.max(1),
            work: AtomicU64::new(0),
        }
    }

    #[doc(hidden)]
    pub fn work(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }

    /// Tickets held (expired ones included until their user's next issue).
    pub fn len(&self) -> usize {
        self.table.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A ticket for GET/HEAD of `path` on behalf of `caller`. Drops the caller's expired
    /// tickets and, at the cap, the caller's own oldest.
    pub fn issue(&self, caller: &Caller, path: &str) -> Result<String, ApiError> {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| ApiError::Internal(format!("no random numbers: {e}")))?;
        let key = crate::hex(&bytes);
        let now = Instant::now();
        let mut guard = self.table.lock();
        let Table { map, by_user } = &mut *guard;
        let queue = by_user.entry(caller.name.clone()).or_default();
        let mut touched = 1u64;
        while let Some(front) = queue.front() {
            let live = map.get(front).is_some_and(|t| t.expires > now);
            if live && queue.len() < self.cap {
                break;
            }
            if let Some(old) = queue.pop_front() {
                map.remove(&old);
                touched += 1;
            }
        }
        map.insert(
            key.clone(),
            Ticket {
                path: path.to_string(),
                name: caller.name.clone(),
                token_sha256: caller.token_sha256.clone().unwrap_or_default(),
                read_only: caller.read_only,
                expires: now + TICKET_LIFETIME,
            },
        );
        queue.push_back(key.clone());
        self.work.fetch_add(touched, Ordering::Relaxed);
        Ok(key)
    }

    /// The caller a ticket stands for, if it is valid for `path` and its token still exists.
    fn redeem(&self, key: &str, path: &str, tokens: &TokenSet) -> Option<Caller> {
        let table = self.table.lock();
        let t = table.map.get(key)?;
        (t.expires > Instant::now()
            && t.path == path
            && tokens.still_valid(&t.name, &t.token_sha256))
        .then(|| Caller {
            name: t.name.clone(),
            read_only: t.read_only,
            // A ticket only opens its video (GET/HEAD): it never changes anything.
            role: Role::from_read_only(t.read_only),
            by_token: true,
            token_sha256: Some(t.token_sha256.clone()),
        })
    }
}

/// Paths anyone may fetch: the health check and the static page (no footage data in them).
fn is_public(path: &str) -> bool {
    path == "/healthz" || super::page::is_asset(path)
}

/// The host part of a `Host` header value (without the port).
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    value.rsplit_once(':').map_or(value, |(h, _)| h)
}

fn is_loopback_host(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn ticket_of(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
}

fn bearer(req: &Request) -> Result<Option<&str>, ApiError> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match v.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(t.trim())),
        _ => Err(ApiError::Unauthorized(
            "use Authorization: Bearer <token>".into(),
        )),
    }
}

/// Decides who a request acts as, or refuses it.
fn identify(app: &App, req: &Request) -> Result<Option<Caller>, ApiError> {
    let path = req.uri().path();
    if is_public(path) {
        return Ok(None);
    }
    let tokens = app.tokens.current()?;
    if tokens.is_empty() {
        if app.require_tokens {
            return Err(ApiError::Unauthorized(
                "this server listens on a network address and no access tokens exist: add one with `footage token add NAME`".into(),
            ));
        }
        if let Some(refusal) = app.tokens.refusal_without_tokens() {
            return Err(refusal);
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        // Nothing but the network path vouches for the caller here, so a change posted by a
        // page of another origin (CSRF) is refused. (With tokens, a browser never sends the
        // token on its own, so there is nothing to forge.)
        if req.method() == Method::POST {
            if let Some(origin) = req.headers().get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("");
                let authority = origin.split_once("://").map_or("", |(_, a)| a);
                if authority != host {
                    return Err(ApiError::Forbidden(format!(
                        "changes from another origin ({origin}) are refused"
                    )));
                }
            }
        }
        if !is_loopback_host(host_name(host)) {
            return Err(ApiError::Forbidden(format!(
                "Host {host:?} is not a loopback name; without tokens only 127.0.0.1, [::1] and localhost are served"
            )));
        }
        return Ok(Some(Caller {
            name: app.local_actor.clone(),
            read_only: false,
            role: Role::Holds,
            by_token: false,
            token_sha256: None,
        }));
    }
    if let Some(token) = bearer(req)? {
        return match tokens.check(token) {
            Some(e) if tokens::is_reserved(&e.name) => Err(ApiError::Unauthorized(format!(
                "the token {:?} bears a reserved actor name and is refused: remove it and \
                 make one under another name",
                e.name
            ))),
            Some(e) => Ok(Some(Caller {
                name: e.name.clone(),
                read_only: e.read_only(),
                role: e.role,
                by_token: true,
                token_sha256: Some(e.sha256.clone()),
            })),
            None => Err(ApiError::Unauthorized("unknown or revoked token".into())),
        };
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(key) = ticket_of(req) {
            return app
                .tickets
                .redeem(&key, path, &tokens)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::Unauthorized("the video ticket is expired or invalid".into())
                });
        }
    }
    Err(ApiError::Unauthorized(
        "a token is needed: send Authorization: Bearer <token>".into(),
    ))
}

/// What an `ingest` token may ask for: creating an upload, and the HEAD, PATCH and DELETE of
/// one (ownership is checked by the handler), OPTIONS of both, and `whoami`. Not the list of
/// uploads (it names other docks' sessions), nor anything that reads footage or stats.
pub fn ingest_may(method: &Method, path: &str) -> bool {
    match path {
        "/api/uploads" => matches!(*method, Method::POST | Method::OPTIONS),
        "/api/whoami" => *method == Method::GET,
        p => {
            p.strip_prefix("/api/uploads/")
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
                && matches!(
                    *method,
                    Method::HEAD | Method::PATCH | Method::DELETE | Method::OPTIONS
                )
        }
    }
}

/// Middleware: identifies the caller (into the request's extensions) or answers 401/403/503.
pub async fn check(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let who = identify(&app, &req).and_then(|c| match c {
        Some(c) if c.role.uploads_only() && !ingest_may(req.method(), req.uri().path()) => {
            Err(ApiError::Forbidden(format!(
                "token {:?} has the ingest role: it may only create and continue its own \
                 uploads at /api/uploads",
                c.name
            )))
        }
        other => Ok(other),
    });
    // A token changed: put the change in the audit log before anything is done with it.
    if app.tokens.take_reloaded() && super::token_audit::any_pending(app.store.root()) {
        let store = app.store.clone();
        let _ = super::blocking(move || super::token_audit::drain_logged(&store)).await;
    }
    match who {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert!(is_loopback_host("127.0.0.2"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("evil.example"));
        assert!(!is_loopback_host("10.0.0.1"));
    }

    #[test]
    fn an_ingest_token_reaches_only_the_upload_endpoints() {
        let id = "/api/uploads/0123456789abcdef0123456789abcdef";
        for (m, p) in [
            (Method::POST, "/api/uploads"),
            (Method::OPTIONS, "/api/uploads"),
            (Method::HEAD, id),
            (Method::PATCH, id),
            (Method::DELETE, id),
            (Method::GET, "/api/whoami"),
        ] {
            assert!(ingest_may(&m, p), "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/api/uploads"),
            (Method::GET, id),
            (Method::POST, id),
            (Method::GET, "/api/segments"),
            (Method::GET, "/api/segments/1/video"),
            (Method::GET, "/api/stats"),
            (Method::GET, "/metrics"),
            (Method::GET, "/api/latest"),
            (Method::PATCH, "/api/uploads/"),
            (Method::PATCH, "/api/uploads/a/b"),
            (Method::POST, "/api/segments/1/hold"),
        ] {
            assert!(!ingest_may(&m, p), "{m} {p}");
        }
    }
}
