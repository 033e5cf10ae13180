//! The upstream side's transport: the cluster's address, the TLS policy per sslmode, and
//! opening a TLS connection the PostgreSQL way (SSLRequest, then the handshake).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::anchor::AnchorAware;
use crate::error::{ProxyError, SessionError};

/// The cluster a target forwards to.
#[derive(Clone)]
pub struct Upstream {
    /// Host name or IP address (also the name the certificate must carry for verify-full).
    pub host: String,
    /// TCP port (5439 for Redshift).
    pub port: u16,
    /// TLS policy, e.g. from [`upstream_tls`]. The upstream is always TLS.
    pub tls: Arc<ClientConfig>,
    /// The database the passwords are scoped to (GetClusterCredentials' DbName), if any:
    /// a client asking for another one is refused before any login.
    pub db_name: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db_name", &self.db_name)
            .finish_non_exhaustive()
    }
}

/// How the upstream's certificate is checked (libpq's sslmode; weaker modes do not exist:
/// the upstream is always TLS). The names and their parsing live in the core's
/// `tls::SslMode`; the `redshift-creds proxy` command maps each of its values to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Encrypt, check nothing.
    Require,
    /// Check the chain against the root certificates, not the host name.
    VerifyCa,
    /// Check the chain and that the certificate names the host.
    VerifyFull,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The upstream TLS policy for `mode`, trusting the PEM certificates in `root_cert` (e.g. the
/// system bundle or Redshift's CA bundle). verify-ca and verify-full need `root_cert`.
pub fn upstream_tls(
    mode: SslMode,
    root_cert: Option<&Path>,
) -> Result<Arc<ClientConfig>, ProxyError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProxyError::Tls(e.to_string()))?;
    let (chain, anchors) = match mode {
        SslMode::Require => (None, Vec::new()),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let Some(path) = root_cert else {
                return Err(ProxyError::Tls(format!(
                    "sslmode {} needs a root certificate file",
                    if mode == SslMode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    }
                )));
            };
            let (store, certs) = roots(path)?;
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
                .build()
                .map_err(|e| ProxyError::Tls(e.to_string()))?;
            (Some(chain), certs)
        }
    };
    // verify-ca accepts a name mismatch; a server whose certificate is one of the
    // roots is accepted as libpq accepts it.
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(AnchorAware {
        chain,
        algs: provider().signature_verification_algorithms,
        roots: anchors,
        check_name: mode == SslMode::VerifyFull,
    });
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file, as a root store and as they are.
fn roots(path: &Path) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), ProxyError> {
    let err = |e: &dyn std::fmt::Display| {
        ProxyError::Tls(format!("root certificates {}: {e}", path.display()))
    };
    let mut store = RootCertStore::empty();
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(&e))? {
        let cert = cert.map_err(|e| err(&e))?;
        store.add(cert.clone()).map_err(|e| err(&e))?;
        certs.push(cert);
    }
    if store.is_empty() {
        return Err(err(&"no certificates in the file"));
    }
    Ok((store, certs))
}

/// Opens a TLS connection to the upstream: TCP, SSLRequest, and the handshake when the
/// server answers `S`. A server that answers anything else gets nothing more from us.
pub(crate) async fn connect_tls(up: &Upstream) -> Result<TlsStream<TcpStream>, SessionError> {
    let tcp = reach(up).await?;
    negotiate(up, tcp).await
}

/// The TCP connection to the upstream.
async fn reach(up: &Upstream) -> Result<TcpStream, SessionError> {
    let tcp = TcpStream::connect((up.host.as_str(), up.port))
        .await
        .map_err(|e| {
            SessionError::connect(format!("cannot connect to {}:{}: {e}", up.host, up.port))
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// SSLRequest and the handshake, on a connection [`reach`] opened.
async fn negotiate(
    up: &Upstream,
    mut tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, SessionError> {
    let at = format!("{}:{}", up.host, up.port);
    let mut req = bytes::BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut req);
    tcp.write_all(&req)
        .await
        .map_err(|e| SessionError::connect(format!("{at}: {e}")))?;
    let answer = tcp.read_u8().await.map_err(|e| {
        SessionError::connect(format!(
            "{at} closed the connection during TLS negotiation: {e}"
        ))
    })?;
    if answer != b'S' {
        return Err(SessionError::connect(format!(
            "{at} does not offer TLS; refusing to send it a password"
        )));
    }
    let name = ServerName::try_from(up.host.clone())
        .map_err(|e| SessionError::connect(format!("invalid host name {:?}: {e}", up.host)))?;
    tokio_rustls::TlsConnector::from(up.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| SessionError::connect(handshake_failed(&at, &up.host, &e)))
}

/// Why [`check_tls`] got no TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCheckError {
    /// No TCP connection: the host is not reachable from here (often a cluster in a VPC).
    Unreachable(String),
    /// Connected, but the server refused TLS or the handshake failed.
    Failed(String),
}

/// Opens a TLS connection to the upstream as a session would, and closes it: for
/// `doctor`. Says the TLS version on success.
pub async fn check_tls(up: &Upstream) -> Result<String, TlsCheckError> {
    let tcp = reach(up)
        .await
        .map_err(|e| TlsCheckError::Unreachable(e.message))?;
    let tls = negotiate(up, tcp)
        .await
        .map_err(|e| TlsCheckError::Failed(e.message))?;
    let (_, state) = tls.get_ref();
    let version = state
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("TLS")
        .replace('_', ".")
        .replace("TLSv", "TLS ");
    Ok(version)
}

/// Why a handshake with `at` failed, in words, with what to do. The TLS library's own
/// text only for the failures it already says plainly.
fn handshake_failed(at: &str, host: &str, e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return format!("TLS with {at}: {e}");
    };
    let rustls::Error::InvalidCertificate(cert) = tls else {
        return format!("TLS with {at}: {e}");
    };
    let why = match cert {
        CertificateError::UnknownIssuer => "its certificate was not issued by any certificate \
            in the sslrootcert file: point sslrootcert at the CA that issued it"
            .to_owned(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "its certificate is not issued for the name {host:?}: connect by a name the \
                 certificate carries, or use sslmode verify-ca to check only who issued it"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "its certificate has expired: the server needs a new one".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "its certificate is not valid yet: check this machine's clock".to_owned()
        }
        CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "it presents a CA certificate (CA:TRUE) as its own, and that certificate is not \
             in the sslrootcert file: put the server's certificate itself in sslrootcert \
             (as psql accepts), or give the server a certificate with CA:FALSE issued by the CA"
                .to_owned()
        }
        other => format!("its certificate was refused ({other:?})"),
    };
    format!("TLS with {at} failed: {why}")
}
