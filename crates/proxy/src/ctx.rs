//! What a session works with: the state every session of the proxy shares, one target's
//! context, the client stream type, and how client strings appear in logs. A leaf the
//! session, its login, the HTTP port and the accept loop all use.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::cancel::CancelTable;
use crate::dial::Dial;
use crate::gate::Gate;
use crate::source::PasswordSource;
use crate::upstream::Upstream;

/// What every session of the proxy shares.
pub(crate) struct Shared {
    pub gate: Arc<Gate>,
    pub client_tls: Option<TlsAcceptor>,
    pub cancels: Arc<CancelTable>,
    /// How upstream connections are opened.
    pub dial: Arc<dyn Dial>,
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
    /// Whether its tokens have proved single-use.
    pub reuse: crate::reuse::TokenReuse,
}

/// A client stream: plain TCP, Unix, or TLS over either.
pub(crate) trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}
pub(crate) type Client = Box<dyn ClientIo>;

/// A client- or server-supplied string as it may appear in a log line: control characters,
/// quotes and backslashes escaped, so it can forge no line and move no cursor.
pub(crate) fn logged(s: &str) -> std::str::EscapeDebug<'_> {
    s.escape_debug()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A target, its shared state and a password source, for session tests on fake streams.

    use std::sync::{Arc, Mutex};

    use super::{Shared, TargetCtx};
    use crate::cancel::CancelTable;
    use crate::dial::fake::FakeDial;
    use crate::gate::Gate;
    use crate::source::{Login, PasswordSource, SourceError};
    use crate::upstream::{SslMode, Upstream, upstream_tls};

    /// Hands out "old" from the cache and "new" when forced, and records each call's `fresh`.
    #[derive(Default)]
    pub(crate) struct Passwords(pub(crate) Mutex<Vec<bool>>);

    impl PasswordSource for Passwords {
        fn login(&self, fresh: bool) -> Result<Login, SourceError> {
            self.0.lock().unwrap().push(fresh);
            Ok(Login::password(
                "IAM:alice",
                if fresh { "new" } else { "old" }.into(),
                0,
            ))
        }
    }

    pub(crate) fn target(db_name: Option<&str>, source: Arc<Passwords>) -> TargetCtx {
        TargetCtx {
            name: "test".into(),
            upstream: Upstream {
                host: "db.invalid".into(),
                port: 5439,
                tls: upstream_tls(SslMode::Require, None).unwrap(),
                db_name: db_name.map(str::to_owned),
            },
            source,
            expiry: std::sync::atomic::AtomicI64::new(0),
            reuse: crate::reuse::TokenReuse::default(),
        }
    }

    pub(crate) fn shared(dial: Arc<FakeDial>) -> Shared {
        Shared {
            gate: Arc::new(Gate::new(Vec::new(), 1024, None)),
            client_tls: None,
            cancels: Arc::new(CancelTable::default()),
            dial,
            kill: tokio::sync::watch::channel(false).1,
            metrics: crate::metrics::Metrics::default(),
            health: crate::lifecycle::Health::default(),
        }
    }
}
