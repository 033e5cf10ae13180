//! The commands that hand a connection over (`get`, `exec`, `pgpass`) and what they share: resolving the flags and finding the connection.

mod exec;
mod get;
mod pgpass;

pub use exec::exec;
pub use get::get;
pub use pgpass::pgpass;

use crate::cli::{ConnArgs, CredArgs};
use crate::config::Resolved;
use crate::credential::Credential;
use crate::endpoint::{DEFAULT_PORT, Endpoint};
use crate::error::Error;
use crate::report;
use crate::source::Source;
use crate::tls::Tls;

/// Refuses, before anything is fetched, to hand an Identity Center token to
/// `what` (`exec`, `--output env`, `pgpass`), which would pass it as a
/// password: exit 2, naming the input that asked for the token.
pub fn refuse_token(r: &Resolved, what: &str) -> Result<(), Error> {
    if r.request.token.is_none() {
        return Ok(());
    }
    let asked_by = r
        .origins()
        .into_iter()
        .find(|(name, _, _)| *name == "api")
        .map_or_else(
            || "--identity-center".to_string(),
            |(_, _, o)| o.to_string(),
        );
    Err(Error::Usage(format!(
        "{what} cannot be used with {asked_by}: a token is not a password; use `redshift-creds proxy`"
    )))
}

/// Checks the flags and the environment; nothing is touched before this passes. The log
/// is the caller's: the full program starts it (`report::init_log`), the front, which
/// hands every logged run over, never does, and so links no log filter.
pub fn resolve(cred: &CredArgs, conn: &ConnArgs) -> Result<Resolved, Error> {
    crate::config::resolve(cred, conn, &crate::config::ProcessEnv)
}

/// Where clients connect: `--host`, else the custom domain, else the
/// endpoint the source finds (DescribeClusters or GetWorkgroup, cached for a
/// day), with `--port` on top.
pub fn endpoint(r: &Resolved, source: &dyn Source) -> Result<Endpoint, Error> {
    let c = &r.client;
    let given = c
        .host
        .clone()
        .or_else(|| r.request.custom_domain_name.clone());
    if let Some(host) = given {
        return Ok(Endpoint {
            host,
            port: c.port.unwrap_or(DEFAULT_PORT),
        });
    }
    let mut endpoint = source.endpoint(r)?;
    if let Some(port) = c.port {
        endpoint.port = port;
    }
    Ok(endpoint)
}

/// The credential and everything a client needs to use it, with `tls`
/// (see [`Resolved::tls`]).
fn connection(
    r: &Resolved,
    tls: &Tls,
    source: &dyn Source,
) -> Result<(Credential, Endpoint), Error> {
    // The endpoint first: if it cannot be found, no password is spent.
    let endpoint = endpoint(r, source)?;
    let credential = source.credential(r)?;
    if let Some(note) = &tls.note {
        report::warn(note);
    }
    Ok((credential, endpoint))
}

fn login<'a>(
    r: &'a Resolved,
    tls: &'a Tls,
    credential: &'a Credential,
    endpoint: &'a Endpoint,
) -> crate::output::Login<'a> {
    crate::output::Login {
        credential,
        endpoint,
        database: r.request.db_name.as_deref(),
        tls,
    }
}
