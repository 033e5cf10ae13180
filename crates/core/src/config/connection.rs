//! Where and how clients connect: host, port and the TLS values given, checked with the rest; the TLS defaults (the system CA bundle) filled in only when a command hands a connection to a client.

use super::layers::{Layer, Origin, Sourced};
use super::{ClientSettings, Origins};
use crate::choice::Parsed;
use crate::error::Error;
use crate::rules;
use crate::tls::{self, SslMode, Tls};
use std::path::PathBuf;

/// The TLS values in force, checked, before the defaults are filled in:
/// that looks for the system CA bundle on disk, which only a command that
/// hands a connection to a client needs.
#[derive(Debug, Clone)]
pub struct TlsChoice {
    mode: Option<Sourced<SslMode>>,
    root_cert: Option<Sourced<PathBuf>>,
}

impl TlsChoice {
    /// The TLS settings for clients, defaults filled in (see [`tls::with_defaults`]).
    pub fn resolve(&self) -> Tls {
        tls::with_defaults(
            self.mode.as_ref().map(|m| m.value),
            self.root_cert.as_ref().map(|r| r.value.clone()),
        )
    }

    /// The values as given, for [`super::Resolved::origins`].
    pub(super) fn origins(&self, origins: &mut Origins) {
        match &self.mode {
            Some(m) => origins.push("sslmode", m.value.as_str().to_string(), m.origin.clone()),
            None => origins.push(
                "sslmode",
                "verify-full with the system CA bundle, else require".to_string(),
                Origin::Default,
            ),
        }
        if let Some(r) = &self.root_cert {
            origins.push(
                "sslrootcert",
                r.value.display().to_string(),
                r.origin.clone(),
            );
        }
    }
}

/// Checks the TLS values given: a mode that is one of ours, a root
/// certificate that can be read (made absolute). Every command refuses bad
/// ones, whether or not it hands a connection over.
fn tls_choice(m: &mut Layer) -> Result<TlsChoice, Error> {
    let mode = match m.sslmode.take() {
        None => None,
        Some(Sourced {
            value: Parsed::Valid(value),
            origin,
        }) => Some(Sourced { value, origin }),
        Some(Sourced {
            value: Parsed::Invalid { text, rule },
            origin,
        }) => return Err(Error::invalid(&origin.to_string(), &text, rule)),
    };
    let root_cert = match m.sslrootcert.take() {
        None => None,
        Some(r) => Some(Sourced {
            value: tls::check_root_cert(&r.value, &r.input())?,
            origin: r.origin,
        }),
    };
    Ok(TlsChoice { mode, root_cert })
}

/// Checks the host, the port and the TLS values given.
pub(super) fn resolve(m: &mut Layer, origins: &mut Origins) -> Result<ClientSettings, Error> {
    let host = m.host.take();
    if let Some(h) = &host {
        rules::host(&h.input(), &h.value)?;
    }
    let host = host.map(|h| Sourced {
        value: h.value.to_ascii_lowercase(),
        origin: h.origin,
    });
    let port = match m.port.take() {
        Some(p) => Some(Sourced {
            value: rules::port(&p.input(), p.value)?,
            origin: p.origin,
        }),
        None => None,
    };
    let tls = tls_choice(m)?;
    origins.record("host", host.as_ref());
    if let Some(p) = &port {
        origins.push("port", p.value.to_string(), p.origin.clone());
    }
    Ok(ClientSettings {
        host: host.map(|h| h.value),
        port: port.map(|p| p.value),
        tls,
    })
}
