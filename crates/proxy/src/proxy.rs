//! The proxy as a whole: targets and options, binding every listener, accepting
//! connections, and the shutdown (stop accepting, let open sessions finish, then return).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::cancel::CancelTable;
use crate::ctx::{Shared, TargetCtx};
use crate::error::ProxyError;
use crate::gate::Conn;
use crate::gate::{self, Gate};
use crate::http;
use crate::lifecycle::Health;
use crate::listen::{self, Bound, DEFAULT_PORT, Listen};
use crate::metrics::Metrics;
use crate::session;
use crate::source::PasswordSource;
use crate::upstream::Upstream;
use std::sync::atomic::Ordering;

/// One connection name: where it listens, where it forwards, where its passwords come from.
pub struct Target {
    /// The connection name, for logs and the "listening on" lines.
    pub name: String,
    /// Its listeners; a `unix:DIR` socket is named after the first TCP port, or 5439.
    pub listen: Vec<Listen>,
    /// The cluster.
    pub upstream: Upstream,
    /// The passwords. Sources shared between targets are the caller's concern.
    pub source: Arc<dyn PasswordSource>,
}

/// How the proxy runs.
#[derive(Clone)]
pub struct Options {
    /// When set, clients may use TLS (see [`crate::client_tls`]); else SSLRequest gets `N`.
    pub client_tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a shutdown waits for open sessions before closing them.
    pub shutdown_timeout: Duration,
    /// The uids that may connect. [`Options::default`] sets only the proxy's own uid: root
    /// too only when the proxy runs as root, or when the caller adds it (`--allow-uid 0`).
    pub allowed_uids: Vec<u32>,
    /// `--http`: where to serve `/startup`, `/liveness`, `/readiness`, `/metrics` and
    /// `POST /quitquitquit` (any address: nothing served there is secret).
    pub http: Option<std::net::SocketAddr>,
    /// `--max-connections`: open sessions at most; the next client gets 53300.
    pub max_connections: Option<usize>,
    /// `--min-shutdown-delay`: keep accepting this long after SIGTERM or `/quitquitquit`.
    pub min_shutdown_delay: Duration,
}

impl Default for Options {
    /// No client TLS, 30 s shutdown grace, the proxy's own user only.
    fn default() -> Self {
        Options {
            client_tls: None,
            shutdown_timeout: Duration::from_secs(30),
            allowed_uids: vec![crate::peer::own_uid()],
            http: None,
            max_connections: None,
            min_shutdown_delay: Duration::ZERO,
        }
    }
}

enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Unix socket files the proxy made, removed when the proxy stops (or is dropped unrun).
struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A bound proxy, not yet serving: [`Proxy::bind`], then [`Proxy::run`].
pub struct Proxy {
    listeners: Vec<(Listener, Arc<TargetCtx>)>,
    targets: Vec<Arc<TargetCtx>>,
    bound: Vec<(String, Bound)>,
    http: Option<std::net::TcpListener>,
    sockets: SocketFiles,
    options: Options,
}

impl Proxy {
    /// Binds the `--http` port, then every listener of every target. A bind error names the
    /// address.
    pub fn bind(targets: Vec<Target>, options: Options) -> Result<Proxy, ProxyError> {
        let http = options.http.map(listen::bind_tcp_std).transpose()?;
        let mut proxy = Proxy {
            listeners: Vec::new(),
            targets: Vec::new(),
            bound: Vec::new(),
            http,
            sockets: SocketFiles(Vec::new()),
            options,
        };
        for t in targets {
            let ctx = Arc::new(TargetCtx {
                name: t.name.clone(),
                upstream: t.upstream,
                source: t.source,
                expiry: std::sync::atomic::AtomicI64::new(0),
                reuse: crate::reuse::TokenReuse::default(),
            });
            proxy.targets.push(ctx.clone());
            // TCP first: a Unix socket is named after the first TCP port actually bound.
            let mut port = None;
            for l in &t.listen {
                if let Listen::Tcp(addr) = l {
                    let std = listen::bind_tcp_std(*addr)?;
                    let at = std.local_addr().map_err(|source| ProxyError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?;
                    port.get_or_insert(at.port());
                    proxy.bound.push((t.name.clone(), Bound::Tcp(at)));
                    proxy.listeners.push((Listener::Tcp(std), ctx.clone()));
                }
            }
            for l in &t.listen {
                if let Listen::Unix(dir) = l {
                    let (std, path) = listen::bind_unix(dir, port.unwrap_or(DEFAULT_PORT))?;
                    proxy.sockets.0.push(path.clone());
                    proxy.bound.push((t.name.clone(), Bound::Unix(path)));
                    proxy.listeners.push((Listener::Unix(std), ctx.clone()));
                }
            }
        }
        Ok(proxy)
    }

    /// Every listener as (target name, address), in the order of the targets.
    pub fn local_addrs(&self) -> &[(String, Bound)] {
        &self.bound
    }

    /// The `--http` port, with the port the kernel picked for port 0.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes or `POST /quitquitquit` arrives: readiness turns
    /// 503 at once, listeners keep accepting for `min_shutdown_delay`, then stop; open
    /// sessions get up to `shutdown_timeout`, after which each is told 57P01 and closed.
    /// Must run inside a Tokio runtime with I/O and time enabled.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (kill_tx, kill_rx) = watch::channel(false);
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        let shared = Arc::new(Shared {
            gate: Arc::new(Gate::new(
                self.options.allowed_uids.clone(),
                gate::raise_fd_limit(),
                self.options.max_connections,
            )),
            client_tls: self
                .options
                .client_tls
                .clone()
                .map(tokio_rustls::TlsAcceptor::from),
            cancels: Arc::new(CancelTable::default()),
            dial: Arc::new(crate::dial::TlsDial),
            kill: kill_rx,
            metrics: Metrics::default(),
            health: Health::default(),
        });
        let bind_err = |source| ProxyError::Bind {
            addr: "listener".into(),
            source,
        };
        let _http = match self.http {
            Some(l) => {
                let l = tokio::net::TcpListener::from_std(l).map_err(bind_err)?;
                let targets = Arc::new(self.targets.clone());
                Some(AbortOnDrop(tokio::spawn(http::serve(
                    l,
                    shared.clone(),
                    targets,
                ))))
            }
            None => None,
        };
        let mut loops = JoinSet::new();
        for (listener, target) in self.listeners {
            let (shared, open, stop) = (shared.clone(), open_tx.clone(), stop_rx.clone());
            let listener = match listener {
                Listener::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Accept::Tcp),
                Listener::Unix(l) => tokio::net::UnixListener::from_std(l).map(Accept::Unix),
            }
            .map_err(bind_err)?;
            loops.spawn(accept_loop(listener, target, shared, open, stop));
        }
        drop(open_tx);
        shared.health.started.store(true, Ordering::Release);
        tokio::select! {
            () = shutdown => {}
            () = shared.health.quit.notified() => tracing::info!("POST /quitquitquit received; shutting down"),
        }
        shared.health.draining.store(true, Ordering::Release);
        let delay = self.options.min_shutdown_delay;
        if !delay.is_zero() {
            tracing::info!(
                seconds = delay.as_secs_f64(),
                "draining: still accepting for the minimum shutdown delay"
            );
            tokio::time::sleep(delay).await;
        }
        let _ = stop_tx.send(true);
        shared.health.stopped.store(true, Ordering::Release);
        while loops.join_next().await.is_some() {}
        drop(self.sockets);
        let open = open_rx.sender_strong_count();
        if open > 0 {
            tracing::info!(open, "stopped accepting; waiting for open sessions");
        }
        if tokio::time::timeout(self.options.shutdown_timeout, open_rx.recv())
            .await
            .is_err()
        {
            tracing::info!(
                open = open_rx.sender_strong_count(),
                "shutdown timeout; closing open sessions (57P01)"
            );
            let _ = kill_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), open_rx.recv()).await;
        }
        Ok(())
    }
}

/// A task aborted when this is dropped (the HTTP port ends with the proxy).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Accept {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Accept {
    async fn accept(&self) -> std::io::Result<Conn> {
        match self {
            Accept::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(Conn::Tcp(s))
            }
            Accept::Unix(l) => Ok(Conn::Unix(l.accept().await?.0)),
        }
    }
}

/// Accepts connections until `stop`. Each is checked at once, before anything is read from
/// it: a refused one is told why and closed here; an admitted one is served by its own task.
async fn accept_loop(
    listener: Accept,
    target: Arc<TargetCtx>,
    shared: Arc<Shared>,
    open: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            c = listener.accept() => c,
        };
        match conn {
            Ok(c) => match shared.gate.admit(&c) {
                Ok(admitted) => {
                    tokio::spawn(session::run(
                        c,
                        admitted,
                        target.clone(),
                        shared.clone(),
                        open.clone(),
                    ));
                }
                Err(refused) => {
                    shared.metrics.refused(refused.metric());
                    shared.gate.log_refusal(&target.name, &refused);
                    refused.tell(&c);
                    tokio::spawn(shared.gate.clone().close_refused(c));
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                if let Some(suppressed) = shared.gate.accept_errors.allow() {
                    tracing::warn!(target = %target.name, error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds every listener, prints `listening on ADDR for NAME` on stderr for each, serves
/// until SIGINT or SIGTERM, then shuts down as [`Proxy::run`] does.
pub async fn serve(targets: Vec<Target>, options: Options) -> Result<(), ProxyError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(ProxyError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(ProxyError::Signal)?;
    let proxy = Proxy::bind(targets, options)?;
    for (name, addr) in proxy.local_addrs() {
        eprintln!("listening on {addr} for {name}");
    }
    if let Some(addr) = proxy.http_addr() {
        eprintln!("serving health checks on http://{addr}");
    }
    proxy
        .run(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("signal received; shutting down");
        })
        .await
}
