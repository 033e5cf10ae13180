//! Client-side TLS: a local CA and a server certificate for localhost, made once with
//! rcgen in a private directory and reused after, so clients can use sslmode=verify-full.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ProxyError;

const CA_FILE: &str = "ca.crt";
const CERT_FILE: &str = "server.crt";
const KEY_FILE: &str = "server.key";

/// The client-side TLS configuration from `dir` (created 0700 if missing; refused if not
/// private), generating a local CA and a certificate for `localhost`, `127.0.0.1` and `::1`
/// on first use. Returns the configuration and the CA certificate's path, for clients'
/// `sslrootcert`. The CA's private key is never written: nothing else can be signed with it.
pub fn client_tls(dir: &Path) -> Result<(Arc<rustls::ServerConfig>, PathBuf), ProxyError> {
    let err = |reason: String| ProxyError::ClientTls {
        dir: dir.to_owned(),
        reason,
    };
    crate::listen::private_dir(dir).map_err(|e| err(e.to_string()))?;
    let (ca, cert, key) = (dir.join(CA_FILE), dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !(ca.is_file() && cert.is_file() && key.is_file()) {
        generate(&ca, &cert, &key).map_err(err)?;
    }
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| err(format!("{}: {e}", cert.display())))?;
    let private =
        PrivateKeyDer::from_pem_file(&key).map_err(|e| err(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
    .map_err(|e| err(e.to_string()))?;
    Ok((Arc::new(config), ca))
}

/// The current year, near enough for certificate validity bounds.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

/// Makes the CA and the server certificate and writes them (the key 0600).
fn generate(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let e = |e: rcgen::Error| format!("cannot generate certificates: {e}");
    let year = this_year();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "redshift-creds proxy local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;

    let key = KeyPair::generate().map_err(e)?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = CertificateParams::new(names).map_err(e)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(e)?;

    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    // Last: its presence means the set is complete.
    write_file(ca_path, ca_cert.pem().as_bytes(), 0o644)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_and_reuses() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("tls");
        let (_, ca) = client_tls(&dir).unwrap();
        assert_eq!(ca, dir.join(CA_FILE));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let before = std::fs::read(&ca).unwrap();
        client_tls(&dir).unwrap();
        assert_eq!(
            std::fs::read(&ca).unwrap(),
            before,
            "the CA is reused, not remade"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            3,
            "no CA key is kept"
        );
    }
}
