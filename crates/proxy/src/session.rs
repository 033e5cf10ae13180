//! One admitted client connection, from its startup to close: the client's startup (TLS
//! or not, cancel or login), the upstream login with a fresh password, the relay, and the
//! closing log line. Who is admitted is decided at accept, in [`crate::gate`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::auth::{LoginError, authenticate};
use crate::cancel::{CancelTable, Registration};
use crate::error::SessionError;
use crate::gate::{Admitted, Conn, Gate};
use crate::source::{Login, PasswordSource};
use crate::upstream::{Upstream, connect_tls};
use crate::wire::{self, Startup};

/// How long a client may take to negotiate encryption and send its startup packet.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the proxy may take to log in upstream.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What every session of the proxy shares.
pub(crate) struct Shared {
    pub gate: Arc<Gate>,
    pub client_tls: Option<TlsAcceptor>,
    pub cancels: Arc<CancelTable>,
    /// Set to true when the shutdown grace period is over: open sessions end.
    pub kill: watch::Receiver<bool>,
    pub metrics: crate::metrics::Metrics,
    pub health: crate::lifecycle::Health,
}

/// One target: its name for logs, its upstream, its password source.
pub(crate) struct TargetCtx {
    pub name: String,
    pub upstream: Upstream,
    pub source: Arc<dyn PasswordSource>,
    /// When the credential of its last login expires (Unix seconds; 0: none yet).
    pub expiry: std::sync::atomic::AtomicI64,
}

/// A client stream: plain TCP, Unix, or TLS over either.
pub(crate) trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}
type Client = Box<dyn ClientIo>;

/// Serves one connection to its end. `_open` is dropped when the session ends, which is how
/// the shutdown knows every session is over.
pub(crate) async fn run(
    conn: Conn,
    admitted: Admitted,
    target: Arc<TargetCtx>,
    shared: Arc<Shared>,
    _open: mpsc::Sender<()>,
) {
    let mut kill = shared.kill.clone();
    // A relaying session tells its client 57P01 itself when killed; this is for the rest,
    // a moment later.
    let killed = async {
        let _ = kill.wait_for(|k| *k).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::select! {
        () = serve(conn, admitted, &target, &shared) => {}
        () = killed => {
            tracing::info!(target = %target.name, "session ended by shutdown");
        }
    }
}

async fn serve(conn: Conn, mut admitted: Admitted, target: &TargetCtx, shared: &Shared) {
    let peer = admitted.peer.clone();
    let stream: Client = match conn {
        Conn::Tcp(s) => Box::new(s),
        Conn::Unix(s) => Box::new(s),
    };
    let tls = shared.client_tls.as_ref();
    let (mut client, startup) =
        match tokio::time::timeout(STARTUP_TIMEOUT, negotiate(stream, tls)).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "client startup failed"),
            Err(_) => return tracing::debug!(%peer, "client sent no startup packet in time"),
        };
    admitted.started();
    match startup {
        Startup::Cancel { pid, key } => shared.cancels.forward(pid, key).await,
        Startup::Params { version, params } => {
            let _slot = match shared.gate.session() {
                Ok(slot) => slot,
                Err(msg) => {
                    shared.metrics.refused(crate::metrics::RefusedBy::Limit);
                    tracing::warn!(target = %target.name, %peer, reason = %msg, "session refused");
                    let _ = client.write_all(&wire::error_response("53300", &msg)).await;
                    return;
                }
            };
            if !shared.health.accepting() {
                shared.metrics.refused(crate::metrics::RefusedBy::Draining);
                let msg = "the proxy is shutting down";
                let _ = client.write_all(&wire::error_response("57P01", msg)).await;
                return;
            }
            shared
                .metrics
                .connections_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let who = Who {
                peer: &peer,
                uid: admitted.uid,
            };
            relay_session(client, version, params, &who, target, shared).await;
        }
        Startup::Ssl | Startup::GssEnc => unreachable!("negotiate returns only a real startup"),
    }
}

/// A client- or server-supplied string as it may appear in a log line: control characters,
/// quotes and backslashes escaped, so it can forge no line and move no cursor.
fn logged(s: &str) -> std::str::EscapeDebug<'_> {
    s.escape_debug()
}

/// Answers SSLRequest (`S` and a handshake when `tls` is set, else `N`) and GSSENCRequest
/// (`N`) until the client sends a StartupMessage or CancelRequest.
async fn negotiate(
    mut stream: Client,
    tls: Option<&TlsAcceptor>,
) -> std::io::Result<(Client, Startup)> {
    let mut encrypted = false;
    loop {
        match wire::read_startup(&mut stream).await? {
            Startup::Ssl if !encrypted => {
                if let Some(acceptor) = tls {
                    stream.write_all(b"S").await?;
                    stream = Box::new(acceptor.accept(stream).await?);
                    encrypted = true;
                } else {
                    stream.write_all(b"N").await?;
                }
            }
            Startup::GssEnc if !encrypted => stream.write_all(b"N").await?,
            Startup::Ssl | Startup::GssEnc => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "encryption requested twice",
                ));
            }
            other => return Ok((stream, other)),
        }
    }
}

/// What the client asked for, once checked.
struct Request {
    database: String,
    /// Startup parameters passed through (without user and database).
    params: Vec<(String, String)>,
    /// `_pq_.` options we do not support, or None when the client needs no
    /// NegotiateProtocolVersion (it asked for 3.0 and no options).
    negotiate: Option<Vec<String>>,
}

/// Checks the client's startup parameters against the target.
fn request(
    version: i32,
    params: Vec<(String, String)>,
    up: &Upstream,
) -> Result<Request, SessionError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let database = get("database")
        .filter(|d| !d.is_empty())
        .or_else(|| up.db_name.clone())
        .or_else(|| get("user"))
        .unwrap_or_default();
    if let Some(allowed) = &up.db_name
        && *allowed != database
    {
        return Err(SessionError::new(
            "3D000",
            format!(
                "the password only works for database {allowed:?}; the client asked for {database:?}"
            ),
        ));
    }
    let unsupported: Vec<String> = params
        .iter()
        .filter(|(n, _)| n.starts_with("_pq_."))
        .map(|(n, _)| n.clone())
        .collect();
    let negotiate =
        (version != wire::PROTOCOL_3_0 || !unsupported.is_empty()).then_some(unsupported);
    let params = params
        .into_iter()
        .filter(|(n, _)| n != "user" && n != "database" && !n.starts_with("_pq_."))
        .collect();
    Ok(Request {
        database,
        params,
        negotiate,
    })
}

/// A logged-in (or logging-in) upstream connection.
type UpstreamConn = tokio_rustls::client::TlsStream<TcpStream>;

/// One login attempt on a new upstream connection, with the password fetched while the
/// connection is being opened.
async fn open_upstream(
    target: &TargetCtx,
    req: &Request,
    fresh: bool,
) -> Result<(UpstreamConn, Login), LoginError> {
    let source = target.source.clone();
    let fetch = tokio::task::spawn_blocking(move || {
        if !fresh {
            source.refresh_ahead();
        }
        source.login(fresh)
    });
    let (tls, login) = tokio::join!(connect_tls(&target.upstream), fetch);
    let login = login
        .map_err(|e| SessionError::connect(format!("password source failed: {e}")))?
        .map_err(|e| SessionError::new(e.sqlstate, e.message))?;
    target
        .expiry
        .store(login.expiration, std::sync::atomic::Ordering::Relaxed);
    let mut tls = tls?;
    let mut startup = BytesMut::new();
    let mut params: Vec<(&str, &str)> = vec![("user", &login.user), ("database", &req.database)];
    params.extend(req.params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    postgres_protocol::message::frontend::startup_message(params, &mut startup)
        .map_err(|e| SessionError::protocol(format!("startup parameters: {e}")))?;
    tls.write_all(&startup)
        .await
        .map_err(|e| SessionError::connect(format!("upstream connection lost: {e}")))?;
    authenticate(&mut tls, &login).await?;
    Ok((tls, login))
}

/// Logs in upstream; when the server rejects the cached password, once more with a fresh one.
async fn login(target: &TargetCtx, req: &Request) -> Result<(UpstreamConn, Login), SessionError> {
    match open_upstream(target, req, false).await {
        Ok(x) => Ok(x),
        Err(LoginError::Failed(e)) => Err(e),
        Err(LoginError::Rejected(e)) => {
            let error = e.to_string();
            tracing::info!(target = %target.name, error = %logged(&error), "cached password rejected; retrying with a fresh one");
            match open_upstream(target, req, true).await {
                Ok(x) => Ok(x),
                Err(LoginError::Failed(e) | LoginError::Rejected(e)) => Err(e),
            }
        }
    }
}

/// What the server said between AuthenticationOk and ReadyForQuery.
struct Ready {
    backend_pid: Option<i32>,
    _cancel: Option<Registration>,
}

/// Forwards AuthenticationOk and then the server's messages up to ReadyForQuery, recording
/// BackendKeyData for cancellation. The client gets the real pid and key.
async fn hand_over(
    client: &mut Client,
    up: &mut UpstreamConn,
    req: &Request,
    target: &TargetCtx,
    shared: &Shared,
) -> Result<Ready, SessionError> {
    let mut out = BytesMut::new();
    if let Some(unsupported) = &req.negotiate {
        out.extend_from_slice(&wire::negotiate_protocol_version(unsupported));
    }
    out.extend_from_slice(&wire::authentication_ok());
    let mut ready = Ready {
        backend_pid: None,
        _cancel: None,
    };
    loop {
        let frame = wire::read_frame(up).await.map_err(|e| {
            SessionError::connect(format!("upstream connection lost after login: {e}"))
        })?;
        out.extend_from_slice(&frame.bytes);
        match frame.tag {
            b'K' => {
                if let (Some(pid), Some(key)) =
                    (wire::i32_at(frame.body(), 0), wire::i32_at(frame.body(), 4))
                {
                    ready.backend_pid = Some(pid);
                    ready._cancel =
                        Some(shared.cancels.register(pid, key, target.upstream.clone()));
                }
            }
            b'Z' | b'E' => break,
            _ => {}
        }
    }
    let _ = client.write_all(&out).await;
    Ok(ready)
}

/// The client, for log lines.
struct Who<'a> {
    peer: &'a str,
    uid: u32,
}

/// Logs in, hands the session over, relays bytes until either side closes, and logs it.
async fn relay_session(
    mut client: Client,
    version: i32,
    params: Vec<(String, String)>,
    who: &Who<'_>,
    target: &TargetCtx,
    shared: &Shared,
) {
    let started = Instant::now();
    let setup = async {
        let req = request(version, params, &target.upstream)?;
        let (mut up, login) = tokio::time::timeout(LOGIN_TIMEOUT, login(target, &req))
            .await
            .map_err(|_| SessionError::connect("timed out logging in to the server"))??;
        let ready = hand_over(&mut client, &mut up, &req, target, shared).await?;
        Ok::<_, SessionError>((up, login.user, req.database, ready))
    };
    let (mut up, user, database, ready) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            shared
                .metrics
                .login_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let error = e.to_string();
            tracing::warn!(target = %target.name, peer = %who.peer, uid = who.uid, error = %logged(&error), "session refused");
            let _ = client
                .write_all(&wire::error_response(&e.sqlstate, &e.message))
                .await;
            return;
        }
    };
    let mut counted = Counted {
        inner: client,
        read: 0,
        written: 0,
    };
    let mut kill = shared.kill.clone();
    let end = tokio::select! {
        r = tokio::io::copy_bidirectional(&mut counted, &mut up) => r.map(|_| "closed"),
        () = async { let _ = kill.wait_for(|k| *k).await; } => {
            // The shutdown timeout ran out: say so as a server would, then close.
            let msg = wire::error_response("57P01", "terminating connection: the proxy is shutting down");
            let _ = counted.write_all(&msg).await;
            Ok("shutdown")
        }
    };
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    shared.metrics.bytes_in.fetch_add(counted.read, relaxed);
    shared.metrics.bytes_out.fetch_add(counted.written, relaxed);
    tracing::info!(
        target = %target.name, peer = %who.peer, uid = who.uid, user = %logged(&user), database = %logged(&database),
        backend_pid = ready.backend_pid.unwrap_or(0),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        bytes_from_client = counted.read, bytes_to_client = counted.written,
        end = %end.map_or_else(|e| e.to_string(), str::to_owned),
        "session closed"
    );
}

/// A client stream that counts the bytes read from and written to it.
struct Counted {
    inner: Client,
    read: u64,
    written: u64,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.written += n as u64;
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
