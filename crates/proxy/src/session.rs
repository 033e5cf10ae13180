//! One admitted client connection, from its startup to close: the client's startup (TLS
//! or not, cancel or login), the upstream login with a fresh password, the relay, and the
//! closing log line. Who is admitted is decided at accept, in [`crate::gate`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

pub(crate) use crate::ctx::{Client, Shared, TargetCtx, logged};
use crate::error::SessionError;
use crate::gate::{Admitted, Conn};
use crate::login::{hand_over, login, request};
use crate::wire::{self, Startup};
use crate::wire_io;

/// How long a client may take to negotiate encryption and send its startup packet.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

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
        killed(&mut kill).await;
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
        Startup::Cancel { pid, key } => shared.cancels.forward(pid, key, &*shared.dial).await,
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

/// Completes when the shutdown grace period is over; never, if the proxy that would say so
/// is gone (a closed channel is no order to kill).
async fn killed(kill: &mut watch::Receiver<bool>) {
    if kill.wait_for(|k| *k).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Answers SSLRequest (`S` and a handshake when `tls` is set, else `N`) and GSSENCRequest
/// (`N`) until the client sends a StartupMessage or CancelRequest.
async fn negotiate(
    mut stream: Client,
    tls: Option<&TlsAcceptor>,
) -> std::io::Result<(Client, Startup)> {
    let mut encrypted = false;
    loop {
        match wire_io::read_startup(&mut stream).await? {
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
        let (mut up, login) =
            tokio::time::timeout(target.source.login_timeout(), login(target, shared, &req))
                .await
                .map_err(|_| SessionError::connect("timed out logging in to the server"))??;
        let ready = hand_over(&mut client, &mut up, &req, target, shared).await?;
        Ok::<_, SessionError>((up, login.describe(), req.database, ready))
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
        () = killed(&mut kill) => {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::ctx::fixtures::{shared, target};
    use crate::dial::fake::FakeDial;

    /// A test client's session: protocol 3.0, user `me` asking for `database`.
    async fn session_of(client: Client, database: &str, target: &TargetCtx, shared: &Shared) {
        let params = vec![
            ("user".into(), "me".into()),
            ("database".into(), database.into()),
        ];
        let who = Who {
            peer: "test",
            uid: 0,
        };
        relay_session(client, wire::PROTOCOL_3_0, params, &who, target, shared).await;
    }

    #[tokio::test]
    async fn relays_a_whole_session_and_forgets_its_key_at_the_end() {
        let dial = Arc::new(FakeDial::default());
        let mut server = dial.queue();
        let shared = shared(dial.clone());
        let target = target(None, Arc::default());
        let (client, mut app) = tokio::io::duplex(64 * 1024);
        let session = session_of(Box::new(client), "dev", &target, &shared);
        let script = async {
            let params = server.startup().await;
            assert!(
                params.contains(&("user".into(), "IAM:alice".into())),
                "{params:?}"
            );
            assert!(
                params.contains(&("database".into(), "dev".into())),
                "{params:?}"
            );
            server.send(b'R', &0i32.to_be_bytes()).await;
            server.send(b'K', &[0, 0, 0, 7, 0, 0, 0, 9]).await;
            server.send(b'Z', b"I").await;
            // AuthenticationOk, BackendKeyData and ReadyForQuery reach the client as sent.
            let mut hello = [0u8; 9 + 13 + 6];
            app.read_exact(&mut hello).await.unwrap();
            assert_eq!(&hello[..9], &wire::authentication_ok()[..]);
            assert_eq!(hello[9], b'K');
            assert_eq!(hello[22], b'Z');
            assert!(shared.cancels.knows(7, 9));
            // Then bytes flow both ways, untouched.
            app.write_all(b"query").await.unwrap();
            let mut q = [0u8; 5];
            server.0.read_exact(&mut q).await.unwrap();
            assert_eq!(&q, b"query");
            server.0.write_all(b"rows").await.unwrap();
            let mut r = [0u8; 4];
            app.read_exact(&mut r).await.unwrap();
            assert_eq!(&r, b"rows");
            drop(app);
            // The client left: the proxy closes the upstream side too.
            let mut rest = Vec::new();
            server.0.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            drop(server);
        };
        tokio::join!(session, script);
        assert!(!shared.cancels.knows(7, 9), "the key outlived the session");
    }

    #[tokio::test]
    async fn without_client_tls_it_declines_encryption_and_reads_the_startup() {
        let (ours, mut app) = tokio::io::duplex(4096);
        let packet = |code: i32, rest: &[u8]| {
            let mut p = i32::try_from(8 + rest.len())
                .unwrap()
                .to_be_bytes()
                .to_vec();
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(rest);
            p
        };
        app.write_all(&packet(80_877_104, b"")).await.unwrap();
        app.write_all(&packet(80_877_103, b"")).await.unwrap();
        app.write_all(&packet(wire::PROTOCOL_3_0, b"user\0me\0\0"))
            .await
            .unwrap();
        let (_, startup) = negotiate(Box::new(ours), None).await.unwrap();
        assert_eq!(
            startup,
            Startup::Params {
                version: wire::PROTOCOL_3_0,
                params: vec![("user".into(), "me".into())]
            }
        );
        let mut answers = [0u8; 2];
        app.read_exact(&mut answers).await.unwrap();
        assert_eq!(&answers, b"NN", "GSSENCRequest and SSLRequest declined");
    }

    #[tokio::test]
    async fn a_refused_session_tells_the_client_why_without_dialing() {
        let dial = Arc::new(FakeDial::default());
        let shared = shared(dial.clone());
        let target = target(Some("dev"), Arc::default());
        let (client, mut app) = tokio::io::duplex(64 * 1024);
        session_of(Box::new(client), "prod", &target, &shared).await;
        let mut answer = Vec::new();
        app.read_to_end(&mut answer).await.unwrap();
        let frame = wire::Frame {
            tag: answer[0],
            bytes: answer.into(),
        };
        match wire::decode(&frame).unwrap() {
            wire::ServerMessage::Error { code, message } => {
                assert_eq!(code, "3D000");
                assert!(message.contains("\"dev\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(dial.dials(), 0);
    }
}
