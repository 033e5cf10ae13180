//! Opening upstream connections, behind the [`Dial`] trait: sessions and cancel requests
//! dial through it, so their logic is tested on in-memory streams, without sockets.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::SessionError;
use crate::upstream::{Upstream, connect_tls};

/// An upstream stream: TLS over TCP in the proxy, anything in tests.
pub(crate) trait UpstreamIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> UpstreamIo for T {}

/// An open upstream connection, ready for a StartupMessage or a CancelRequest.
pub(crate) type UpstreamConn = Box<dyn UpstreamIo>;

/// A connection being opened.
pub(crate) type Dialing<'a> =
    Pin<Box<dyn Future<Output = Result<UpstreamConn, SessionError>> + Send + 'a>>;

/// Opens connections to an upstream.
pub(crate) trait Dial: Send + Sync {
    /// A new encrypted connection to `up`.
    fn dial<'a>(&'a self, up: &'a Upstream) -> Dialing<'a>;
}

/// The proxy's dialer: TCP, SSLRequest and the TLS handshake ([`connect_tls`]).
pub(crate) struct TlsDial;

impl Dial for TlsDial {
    fn dial<'a>(&'a self, up: &'a Upstream) -> Dialing<'a> {
        Box::pin(async move { Ok(Box::new(connect_tls(up).await?) as UpstreamConn) })
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A dialer that hands out in-memory streams; the test plays the server on the other end.

    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Dial, Dialing, UpstreamConn};
    use crate::error::SessionError;
    use crate::upstream::Upstream;

    /// The server's end of a fake connection, speaking bytes.
    pub(crate) struct FakeServer(pub(crate) tokio::io::DuplexStream);

    impl FakeServer {
        /// The StartupMessage the proxy sent: its parameters.
        pub(crate) async fn startup(&mut self) -> Vec<(String, String)> {
            match crate::wire_io::read_startup(&mut self.0).await.unwrap() {
                crate::wire::Startup::Params { params, .. } => params,
                other => panic!("not a StartupMessage: {other:?}"),
            }
        }

        /// Sends a backend message.
        pub(crate) async fn send(&mut self, tag: u8, body: &[u8]) {
            let mut m = vec![tag];
            m.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
            m.extend_from_slice(body);
            self.0.write_all(&m).await.unwrap();
        }

        /// Reads a frontend message: its type and body.
        pub(crate) async fn recv(&mut self) -> (u8, Vec<u8>) {
            let tag = self.0.read_u8().await.unwrap();
            let len = usize::try_from(self.0.read_i32().await.unwrap()).unwrap();
            let mut body = vec![0; len - 4];
            self.0.read_exact(&mut body).await.unwrap();
            (tag, body)
        }
    }

    /// Each dial takes the next stream; with none left, it fails as an unreachable host does.
    #[derive(Default)]
    pub(crate) struct FakeDial {
        streams: Mutex<VecDeque<tokio::io::DuplexStream>>,
        pub(crate) dials: AtomicUsize,
    }

    impl FakeDial {
        /// Queues a connection and returns the server's end of it.
        pub(crate) fn queue(&self) -> FakeServer {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            self.streams.lock().unwrap().push_back(ours);
            FakeServer(theirs)
        }

        pub(crate) fn dials(&self) -> usize {
            self.dials.load(Ordering::SeqCst)
        }
    }

    impl Dial for FakeDial {
        fn dial<'a>(&'a self, _: &'a Upstream) -> Dialing<'a> {
            self.dials.fetch_add(1, Ordering::SeqCst);
            let next = self.streams.lock().unwrap().pop_front();
            Box::pin(async move {
                next.map(|s| Box::new(s) as UpstreamConn)
                    .ok_or_else(|| SessionError::connect("cannot connect to the fake upstream"))
            })
        }
    }
}
