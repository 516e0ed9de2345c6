//! Running the server: binding (refusing a non-loopback address without tokens), the accept
//! loop (connection caps per client, hyper with header and idle timeouts), the drain on
//! shutdown, the scheduled audit head publication, and a server on its own thread (`spawn`).
//!
//! Invariant: a connection with no bytes moving for `idle_timeout` is closed; on shutdown no
//! new connection is accepted and requests in flight get `drain_timeout` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::Store;

use super::{
    admission, auth, blocking, router, token_audit, tokens, App, ServerError, ServerOptions,
    TokenSet, REFUSAL_LOG_EVERY,
};

/// A bound server, ready to run.
pub struct Server {
    store: Store,
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    addr: SocketAddr,
}

impl Server {
    /// Binds the listening socket. Refuses a non-loopback address while the store has no
    /// tokens.
    pub async fn bind(store: Store, opts: ServerOptions) -> Result<Server, ServerError> {
        let tokens = TokenSet::load(store.root())?;
        // A store with tokens from before the marker gets it now, so that it fails closed.
        tokens::ensure_marker(store.root(), &tokens)?;
        let require_tokens = !opts.addr.ip().is_loopback();
        if require_tokens && tokens.is_empty() {
            return Err(ServerError::NoTokens(opts.addr));
        }
        let listener = TcpListener::bind(opts.addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: opts.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: opts.addr,
            source,
        })?;
        // Token changes made while no server ran and not yet in the audit log.
        token_audit::drain(&store)?;
        let app = Arc::new(App {
            tokens: auth::TokenCache::new(store.root().to_path_buf(), tokens),
            store: store.clone(),
            videos: Default::default(),
            tickets: auth::Tickets::new(opts.max_tickets_per_user),
            require_tokens,
            local_actor: opts.local_actor.clone(),
            body_timeout: opts.body_timeout,
            ops: opts.ops.clone().unwrap_or_default(),
            bulk_nice: opts.bulk_nice,
        });
        Ok(Server {
            store,
            listener,
            router: router(app, opts.log_requests),
            opts,
            addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes; then stops accepting (the listening socket is
    /// closed: new connections are refused), lets requests in flight finish (at most
    /// `drain_timeout`) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.opts.max_connections.max(1),
        ));
        let clients = admission::ClientCounts::new(self.opts.max_connections_per_client);
        let drain = tokio::spawn(token_audit::drain_every(
            self.store.clone(),
            token_audit::DRAIN_EVERY,
        ));
        // Refused connections are reported at most once per REFUSAL_LOG_EVERY (a flood must not
        // flood the log too).
        let mut refused = 0u64;
        let mut last_refusal_log: Option<Instant> = None;
        let mut shutdown = std::pin::pin!(shutdown);
        let publisher = self.opts.publish_head_every.map(|every| {
            tokio::spawn(publish_head_on_schedule(
                self.store.clone(),
                every,
                self.opts.log_requests,
            ))
        });
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&limit).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(target: "footage::server", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            // Past its cap a client's connection is closed before anything is read from it;
            // its global slot (`permit`) goes back at once.
            let Some(slot) = clients.admit(peer.ip()) else {
                drop(tcp);
                refused += 1;
                if last_refusal_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                    tracing::warn!(
                        target: "footage::server",
                        refused,
                        cap = self.opts.max_connections_per_client,
                        last_from = %peer.ip(),
                        "refused connection(s) over the per-client cap"
                    );
                    refused = 0;
                    last_refusal_log = Some(Instant::now());
                }
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let activity = Arc::new(AtomicU64::new(0));
            let io = Watched {
                inner: tcp,
                start: Instant::now(),
                activity: Arc::clone(&activity),
            };
            let start = io.start;
            let svc = hyper_util::service::TowerToHyperService::new(self.router.clone());
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.opts.header_timeout)
                .serve_connection(TokioIo::new(io), svc);
            let conn = graceful.watch(conn);
            let idle = self.opts.idle_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let _slot = slot;
                tokio::select! {
                    _ = conn => {}
                    _ = idle_watch(start, activity, idle) => {}
                }
            });
        }
        drop(self.listener);
        tracing::info!(
            target: "footage::server",
            drain_timeout_s = self.opts.drain_timeout.as_secs_f64(),
            "stopped accepting connections; waiting for requests in flight"
        );
        if let Some(p) = publisher {
            p.abort();
        }
        tokio::select! {
            _ = graceful.shutdown() => {
                tracing::info!(target: "footage::server", "every request in flight finished");
            }
            _ = tokio::time::sleep(self.opts.drain_timeout) => {
                tracing::warn!(
                    target: "footage::server",
                    drain_timeout_s = self.opts.drain_timeout.as_secs_f64(),
                    "drain timeout: cutting the connections still open"
                );
            }
        }
        drain.abort();
        // Token changes made while the server ran and not yet copied: copy them now.
        let store = self.store.clone();
        let _ = blocking(move || token_audit::drain_logged(&store)).await;
        Ok(())
    }
}

/// Every `every`, publishes the audit chain head to the cloud tier if the chain moved since
/// the last look (see [`Store::republish_audit_head`]); failures, a rolled-back log among them,
/// are logged every time and never stop the server.
async fn publish_head_on_schedule(store: Store, every: Duration, log: bool) {
    let mut last_count: Option<u64> = None;
    loop {
        tokio::time::sleep(every).await;
        let count = store.audit_head().0;
        if last_count == Some(count) {
            continue;
        }
        let s = store.clone();
        match blocking(move || Ok(s.republish_audit_head()?)).await {
            Ok(published) => {
                last_count = Some(count);
                if let (Some(head), true) = (published, log) {
                    tracing::info!(
                        target: "footage::server",
                        entries = head.count,
                        "published the audit chain head to the cloud"
                    );
                }
            }
            Err(e) => tracing::error!(target: "footage::server", error = %e, "audit head"),
        }
    }
}

/// Completes once no byte has moved on a connection for `idle`.
async fn idle_watch(start: Instant, activity: Arc<AtomicU64>, idle: Duration) {
    loop {
        let last = Duration::from_millis(activity.load(Ordering::Relaxed));
        let quiet_until = start + last + idle;
        if Instant::now() >= quiet_until {
            return;
        }
        tokio::time::sleep_until(quiet_until.into()).await;
    }
}

/// A TCP stream that notes when bytes last moved.
struct Watched {
    inner: TcpStream,
    start: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `store` on `addr` until `shutdown` completes (default options otherwise).
pub async fn serve(
    store: Store,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let opts = ServerOptions {
        addr,
        ..ServerOptions::default()
    };
    Server::bind(store, opts).await?.run(shutdown).await
}

/// A server running on its own runtime thread (for tests and for embedding in a program that
/// is not async). Stops when [`RunningServer::stop`] is called or it is dropped.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| ServerError::Runtime("the server thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts a server on a thread of its own with a 2-thread runtime; returns once it listens.
pub fn spawn(store: Store, opts: ServerOptions) -> Result<RunningServer, ServerError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServerError::Runtime(e.to_string()))?;
    let server = rt.block_on(Server::bind(store, opts))?;
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("footage-serve".into())
        .spawn(move || {
            rt.block_on(server.run(async {
                let _ = rx.await;
            }))
        })
        .map_err(|e| ServerError::Runtime(e.to_string()))?;
    Ok(RunningServer {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}
