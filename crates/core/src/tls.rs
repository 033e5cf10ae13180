//! TLS for clients: the sslmode and root certificate to hand over; never a mode without TLS.

use crate::error::Error;
use std::path::{Path, PathBuf};

/// The TLS modes clients may use. A temporary password must not cross the
/// network in clear, and a client allowed to fall back to plain text can hide
/// the real error, so `disable`, `allow` and `prefer` do not exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Encrypted; the server is not verified (unless a root cert is given).
    Require,
    /// Encrypted; the server's certificate chain is verified.
    VerifyCa,
    /// Encrypted; chain and host name are verified.
    VerifyFull,
}

impl SslMode {
    /// Every mode, for code that must map each one (the proxy command's conversion to the
    /// engine's own `SslMode` is tested over this list).
    pub const ALL: [SslMode; 3] = [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PGSSLMODE.
    pub mode: SslMode,
    /// PGSSLROOTCERT, when one is set or found.
    pub root_cert: Option<PathBuf>,
    /// A note for the user when the default had to be weakened.
    pub note: Option<String>,
}

/// Where distributions keep the system CA bundle.
const CA_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

impl crate::choice::Choice for SslMode {
    fn parse(text: &str) -> Result<Self, &'static str> {
        match text {
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "disable" | "allow" | "prefer" => Err(
                "connections without TLS are refused: Redshift IAM logins must use TLS; \
                 use require, verify-ca or verify-full",
            ),
            _ => Err("must be require, verify-ca or verify-full"),
        }
    }
}

/// Checks a given root certificate: a readable file. Returns its absolute
/// path, which clients started elsewhere can use. `input` names its source.
pub fn check_root_cert(path: &Path, input: &str) -> Result<PathBuf, Error> {
    let shown = path.to_string_lossy();
    if !path.is_file() || std::fs::File::open(path).is_err() {
        return Err(Error::invalid(
            input,
            &shown,
            "must be a readable certificate file",
        ));
    }
    Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Fills in the defaults around the checked values: with a root
/// certificate, verify-full unless a mode is given; without one,
/// verify-full with the system CA bundle, or require (with a note) when no
/// bundle is found. Only this looks for the system bundle.
pub fn with_defaults(mode: Option<SslMode>, root_cert: Option<PathBuf>) -> Tls {
    let bundle = || system_bundle(&crate::env::ProcessEnv);
    defaults(mode, root_cert, bundle)
}

/// [`with_defaults`] with the system bundle lookup passed in; it runs only
/// when no root certificate is given.
fn defaults(
    mode: Option<SslMode>,
    root_cert: Option<PathBuf>,
    system_bundle: impl FnOnce() -> Option<PathBuf>,
) -> Tls {
    if let Some(root) = root_cert {
        return Tls {
            mode: mode.unwrap_or(SslMode::VerifyFull),
            root_cert: Some(root),
            note: None,
        };
    }
    match (mode, system_bundle()) {
        (Some(SslMode::Require), _) => Tls { mode: SslMode::Require, root_cert: None, note: None },
        (Some(m), bundle) => Tls { mode: m, root_cert: bundle, note: None },
        (None, Some(b)) => Tls { mode: SslMode::VerifyFull, root_cert: Some(b), note: None },
        (None, None) => Tls {
            mode: SslMode::Require,
            root_cert: None,
            note: Some(
                "no system CA bundle found, so sslmode is require (encrypted, server not verified); \
                 pass --sslrootcert to verify the server"
                    .to_string(),
            ),
        },
    }
}

/// The system CA bundle: `SSL_CERT_FILE` if it names a file, else the first
/// of the usual places that exists.
fn system_bundle(env: &dyn crate::env::Env) -> Option<PathBuf> {
    let from_env = crate::env::path(env, "SSL_CERT_FILE").filter(|p| p.is_file());
    from_env.or_else(|| CA_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks and defaults the config applies to `--sslmode` and
    /// `--sslrootcert` (see `config/connection.rs`), composed for these tests.
    fn resolve(mode: Option<(&str, &str)>, root_cert: Option<(&Path, &str)>) -> Result<Tls, Error> {
        use crate::choice::Choice;
        let mode = match mode {
            None => None,
            Some((text, input)) => {
                Some(SslMode::parse(text).map_err(|rule| Error::invalid(input, text, rule))?)
            }
        };
        let root_cert = match root_cert {
            Some((path, input)) => Some(check_root_cert(path, input)?),
            None => None,
        };
        Ok(with_defaults(mode, root_cert))
    }

    #[test]
    fn modes_without_tls_are_refused() {
        for m in ["disable", "allow", "prefer"] {
            let err = resolve(Some((m, "--sslmode")), None).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string()
                    .contains("connections without TLS are refused"),
                "{err}"
            );
        }
        let err = resolve(Some(("VERIFY-FULL", "--sslmode")), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be require, verify-ca or verify-full"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_root_cert_must_exist_and_is_made_absolute() {
        let err = resolve(
            None,
            Some((Path::new("/nonexistent/ca.pem"), "--sslrootcert")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--sslrootcert"), "{err}");
        let f = tempfile::NamedTempFile::new().unwrap();
        let tls = resolve(
            Some(("verify-ca", "--sslmode")),
            Some((f.path(), "--sslrootcert")),
        )
        .unwrap();
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.root_cert.as_deref(), Some(f.path()));
    }

    #[test]
    fn all_names_every_mode_once_and_each_parses_back() {
        use crate::choice::Choice;
        for (i, mode) in SslMode::ALL.iter().enumerate() {
            // A new variant fails to compile here until it is listed in ALL.
            let index = match mode {
                SslMode::Require => 0,
                SslMode::VerifyCa => 1,
                SslMode::VerifyFull => 2,
            };
            assert_eq!(index, i, "{mode:?}");
            assert_eq!(SslMode::parse(mode.as_str()), Ok(*mode));
        }
    }

    #[test]
    fn the_defaults_around_what_was_given() {
        let bundle = PathBuf::from("/bundle.pem");
        let root = PathBuf::from("/given/ca.pem");
        let found = || Some(PathBuf::from("/bundle.pem"));
        let none = || None;
        let unused = || -> Option<PathBuf> { panic!("no bundle lookup with a root certificate") };
        let cases = [
            (
                defaults(None, None, found),
                SslMode::VerifyFull,
                Some(&bundle),
            ),
            (defaults(None, None, none), SslMode::Require, None),
            (
                defaults(Some(SslMode::Require), None, found),
                SslMode::Require,
                None,
            ),
            (
                defaults(Some(SslMode::VerifyCa), None, found),
                SslMode::VerifyCa,
                Some(&bundle),
            ),
            (
                defaults(Some(SslMode::VerifyFull), None, none),
                SslMode::VerifyFull,
                None,
            ),
            (
                defaults(None, Some(root.clone()), unused),
                SslMode::VerifyFull,
                Some(&root),
            ),
            (
                defaults(Some(SslMode::Require), Some(root.clone()), unused),
                SslMode::Require,
                Some(&root),
            ),
        ];
        for (i, (tls, mode, cert)) in cases.iter().enumerate() {
            assert_eq!(
                (tls.mode, tls.root_cert.as_ref()),
                (*mode, *cert),
                "case {i}"
            );
        }
        // Only the weakened default carries a note.
        let notes: Vec<bool> = cases.iter().map(|c| c.0.note.is_some()).collect();
        assert_eq!(notes, [false, true, false, false, false, false, false]);
        assert!(
            cases[1]
                .0
                .note
                .as_deref()
                .unwrap()
                .contains("no system CA bundle")
        );
    }

    #[test]
    fn ssl_cert_file_names_the_bundle_when_it_is_a_file() {
        struct One(std::ffi::OsString);
        impl crate::env::Env for One {
            fn var_os(&self, name: &str) -> Option<std::ffi::OsString> {
                (name == "SSL_CERT_FILE").then(|| self.0.clone())
            }
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        let found = system_bundle(&One(f.path().into()));
        assert_eq!(found.as_deref(), Some(f.path()));
        let missing = system_bundle(&One("/nonexistent/bundle.pem".into()));
        assert_ne!(
            missing.as_deref(),
            Some(Path::new("/nonexistent/bundle.pem"))
        );
    }
}
