//! The errors the proxy reports to its caller, and the one a session reports to its client.

use std::path::PathBuf;

/// Why the proxy could not start (or stop cleanly). Each message names the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A Unix socket directory that is missing and cannot be made, or is not private.
    #[error("socket directory {}: {reason}", dir.display())]
    SocketDir { dir: PathBuf, reason: String },
    /// A TLS configuration that cannot be built (bad root certificate file, bad key).
    #[error("TLS: {0}")]
    Tls(String),
    /// The client-side TLS directory or its certificates.
    #[error("client TLS in {}: {reason}", dir.display())]
    ClientTls { dir: PathBuf, reason: String },
    /// SIGINT/SIGTERM handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

/// A session-ending error, sent to the client as a FATAL ErrorResponse.
#[derive(Debug, Clone)]
pub(crate) struct SessionError {
    /// Ours, or the server's when it ended the login.
    pub sqlstate: std::borrow::Cow<'static, str>,
    pub message: String,
}

impl SessionError {
    pub(crate) fn new(
        sqlstate: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            sqlstate: sqlstate.into(),
            message: message.into(),
        }
    }

    /// 08001: the proxy could not establish the upstream connection.
    pub(crate) fn connect(message: impl Into<String>) -> Self {
        Self::new("08001", message)
    }

    /// 08P01: a peer broke the protocol.
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new("08P01", message)
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}
