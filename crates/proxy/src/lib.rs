//! The engine of `redshift-creds proxy`: a local PostgreSQL-protocol proxy that logs every new
//! upstream connection in with a fresh IAM password, so a client never holds one.
//!
//! The crate knows no AWS: passwords come from a [`PasswordSource`] that the caller implements.
//! [`serve`] is the whole program; [`Proxy::bind`] + [`Proxy::run`] split it for tests.

mod anchor;
mod auth;
mod cancel;
mod client_tls;
mod ctx;
mod dial;
mod error;
mod gate;
mod http;
mod lifecycle;
mod listen;
mod login;
mod metrics;
mod peer;
mod proxy;
mod reuse;
mod session;
mod sock_diag;
mod source;
mod upstream;
mod wire;
mod wire_io;

pub use client_tls::client_tls;
pub use error::ProxyError;
pub use listen::{Bound, Listen};
pub use proxy::{Options, Proxy, Target, serve};
pub use source::{Login, LoginSecret, PasswordSource, SourceError};
pub use upstream::{SslMode, TlsCheckError, Upstream, check_tls, upstream_tls};
