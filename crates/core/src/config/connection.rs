//! Where and how clients connect: host and port (checked with the rest), and the TLS settings, resolved only when a command hands a connection to a client.

use super::layers::{Layer, Origin, Sourced};
use super::{Connection, Origins};
use crate::choice::Parsed;
use crate::error::Error;
use crate::rules;
use crate::tls::{self, SslMode, Tls};
use std::path::PathBuf;

/// The TLS values in force, not yet checked: checking looks at the
/// filesystem (the root certificate, the system CA bundle), which only a
/// command that hands a connection over needs.
#[derive(Debug, Clone)]
pub struct TlsChoice {
    mode: Option<Sourced<Parsed<SslMode>>>,
    root_cert: Option<Sourced<PathBuf>>,
}

impl TlsChoice {
    /// Checks the mode and the root certificate and fills in the defaults
    /// (see [`tls::resolve_parsed`]).
    pub fn resolve(&self) -> Result<Tls, Error> {
        let mode = match &self.mode {
            None => None,
            Some(Sourced {
                value: Parsed::Valid(m),
                ..
            }) => Some(*m),
            Some(Sourced {
                value: Parsed::Invalid { text, rule },
                origin,
            }) => return Err(Error::invalid(&origin.to_string(), text, *rule)),
        };
        let input = self.root_cert.as_ref().map(Sourced::input);
        let root = self
            .root_cert
            .as_ref()
            .zip(input.as_deref())
            .map(|(r, input)| (r.value.as_path(), input));
        tls::resolve_parsed(mode, root)
    }

    /// The values as given, for [`super::Resolved::origins`].
    pub(super) fn origins(&self, origins: &mut Origins) {
        match &self.mode {
            Some(Sourced {
                value: Parsed::Valid(m),
                origin,
            }) => origins.push("sslmode", m.as_str().to_string(), origin.clone()),
            Some(Sourced {
                value: Parsed::Invalid { text, .. },
                origin,
            }) => origins.push("sslmode", text.clone(), origin.clone()),
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

/// Checks the host and port, and takes the TLS values for later.
pub(super) fn resolve(m: &mut Layer, origins: &mut Origins) -> Result<Connection, Error> {
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
    origins.record("host", host.as_ref());
    if let Some(p) = &port {
        origins.push("port", p.value.to_string(), p.origin.clone());
    }
    Ok(Connection {
        host: host.map(|h| h.value),
        port: port.map(|p| p.value),
        tls: TlsChoice {
            mode: m.sslmode.take(),
            root_cert: m.sslrootcert.take(),
        },
    })
}
