//! The upstream's server certificate check for every sslmode (require: any; verify-ca: the chain; verify-full: the chain and the name), and a server certificate that is itself one of the configured root certificates: accepted as libpq (OpenSSL) accepts it, with its dates and, for verify-full, its names still checked.
//!
//! A PostgreSQL server is often given one self-signed certificate that is
//! also the CA (`basicConstraints=CA:TRUE`), and users point `sslrootcert` at
//! that very file. OpenSSL, and so psql, accepts it: the certificate is a
//! trust anchor. webpki refuses any CA certificate as the end entity
//! (`CaUsedAsEndEntity`), whatever the roots. [`AnchorAware`] accepts such a
//! certificate only when it is byte for byte one of the configured roots,
//! and then checks what OpenSSL checks of a trust anchor: that it is within
//! its dates, and (verify-full) that it names the host.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The upstream's certificate check for every sslmode: the chain verifier, and the roots a
/// server certificate may be one of. For verify-ca (`check_name` false) a chain that verifies
/// is enough: a name mismatch is accepted. The handshake signatures are always checked.
#[derive(Debug)]
pub(crate) struct AnchorAware {
    /// webpki's chain verifier over the roots; `None` for sslmode=require: any certificate.
    pub(crate) chain: Option<Arc<WebPkiServerVerifier>>,
    /// The signature algorithms the handshake may use (the crypto provider's).
    pub(crate) algs: WebPkiSupportedAlgorithms,
    /// The certificates of the sslrootcert file, as DER.
    pub(crate) roots: Vec<CertificateDer<'static>>,
    /// verify-full: the certificate must name the host.
    pub(crate) check_name: bool,
}

impl AnchorAware {
    /// A certificate that is one of the roots: its dates, and its names for verify-full.
    /// `refused` is what the chain verifier said, kept when the dates cannot be read.
    fn as_anchor(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
        refused: rustls::Error,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((not_before, not_after)) = validity(cert) else {
            return Err(refused);
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now > not_after {
            return Err(CertificateError::Expired.into());
        }
        if self.check_name {
            let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
            rustls::client::verify_server_name(&parsed, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }
}

impl ServerCertVerifier for AnchorAware {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(refused) if self.roots.iter().any(|r| r.as_ref() == end_entity.as_ref()) => {
                self.as_anchor(end_entity, server_name, now, refused)
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A certificate's notBefore and notAfter, in Unix seconds; `None` when the
/// DER does not have them where X.509 puts them.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, mut tbs, _) = tlv(cert)? else {
        return None;
    };
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2;
    }
    let (0x30, validity, _) = tlv(tbs)? else {
        return None;
    };
    let (tag, not_before, rest) = tlv(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = tlv(rest)?;
    Some((not_before, time(tag, not_after)?))
}

/// One DER element: its tag, its contents and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..octets {
            let (&b, r) = rest.split_first()?;
            len = (len << 8) | usize::from(b);
            rest = r;
        }
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the
/// forms RFC 5280 allows, in Unix seconds.
fn time(tag: u8, value: &[u8]) -> Option<i64> {
    let digits = value.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |from: usize, len: usize| -> Option<i64> {
        std::str::from_utf8(digits.get(from..from + len)?)
            .ok()?
            .parse()
            .ok()
    };
    let (year, at) = match (tag, digits.len()) {
        // RFC 5280: a two-digit year 50-99 is 19YY, 00-49 is 20YY.
        (0x17, 12) => {
            let yy = number(0, 2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (number(0, 4)?, 4),
        _ => return None,
    };
    let (month, day) = (number(at, 2)?, number(at + 2, 2)?);
    let (hour, minute, second) = (number(at + 4, 2)?, number(at + 6, 2)?, number(at + 8, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_ca(names: &[&str], not_after: (i32, u8, u8)) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn reads_the_dates_of_a_certificate() {
        // 2001-02-03 and 2049-12-31 are UTCTime; 2051-01-01 is GeneralizedTime.
        let cert = self_signed_ca(&["localhost"], (2049, 12, 31));
        assert_eq!(validity(&cert), Some((981_158_400, 2_524_521_600)));
        let cert = self_signed_ca(&["localhost"], (2051, 1, 1));
        assert_eq!(validity(&cert).map(|v| v.1), Some(2_556_144_000));
        assert_eq!(validity(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(validity(&[]), None);
    }

    fn verifier(roots: &[CertificateDer<'static>], check_name: bool) -> AnchorAware {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = rustls::RootCertStore::empty();
        for r in roots {
            store.add(r.clone()).unwrap();
        }
        let algs = provider.signature_verification_algorithms;
        let chain =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .unwrap();
        AnchorAware {
            chain: Some(chain),
            algs,
            roots: roots.to_vec(),
            check_name,
        }
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[test]
    fn a_ca_certificate_is_accepted_only_when_it_is_one_of_the_roots() {
        let server = self_signed_ca(&["localhost"], (2049, 12, 31));
        let other = self_signed_ca(&["localhost"], (2049, 12, 31));
        let name = ServerName::try_from("localhost").unwrap();
        let now = at(1_800_000_000);
        // The very certificate in the roots: accepted.
        let v = verifier(std::slice::from_ref(&server), true);
        assert!(v.verify_server_cert(&server, &[], &name, &[], now).is_ok());
        // Another CA certificate under the same name: refused as webpki refuses it.
        let v = verifier(std::slice::from_ref(&other), true);
        let err = v
            .verify_server_cert(&server, &[], &name, &[], now)
            .unwrap_err();
        assert!(format!("{err:?}").contains("CaUsedAsEndEntity"), "{err:?}");
    }

    #[test]
    fn an_anchor_still_needs_its_dates_and_for_verify_full_the_host_name() {
        let server = self_signed_ca(&["localhost"], (2049, 12, 31));
        let name = ServerName::try_from("localhost").unwrap();
        let other = ServerName::try_from("db.example.com").unwrap();
        let full = verifier(std::slice::from_ref(&server), true);
        let expired = full.verify_server_cert(&server, &[], &name, &[], at(2_600_000_000));
        assert_eq!(
            expired.unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::Expired)
        );
        let early = full.verify_server_cert(&server, &[], &name, &[], at(900_000_000));
        assert_eq!(
            early.unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::NotValidYet)
        );
        let wrong = full.verify_server_cert(&server, &[], &other, &[], at(1_800_000_000));
        assert!(
            matches!(
                wrong,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{wrong:?}"
        );
        // verify-ca does not look at the name.
        let ca = verifier(std::slice::from_ref(&server), false);
        assert!(
            ca.verify_server_cert(&server, &[], &other, &[], at(1_800_000_000))
                .is_ok()
        );
    }
}
