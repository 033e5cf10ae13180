//! `get`: the credential (or Identity Center token) on stdout, as JSON, the bare password or shell variables.

use super::{connection, login};
use crate::config::Resolved;
use crate::error::Error;
use crate::output;
use crate::output::OutputFormat;
use crate::source::Source;

/// Prints the credential in `format` on stdout.
pub fn get(r: &Resolved, format: OutputFormat, source: &dyn Source) -> Result<(), Error> {
    if r.request.token.is_some() {
        return get_token(r, format, source);
    }
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Env => {
            let tls = r.tls();
            let (credential, endpoint) = connection(r, &tls, source)?;
            output::write_env(&mut stdout, &login(r, &tls, &credential, &endpoint))
        }
        OutputFormat::Json | OutputFormat::Password => {
            output::write(&mut stdout, format, &source.credential(r)?)
        }
    }
    .map_err(Error::Output)
}

/// Prints the request's Identity Center token as JSON or alone; shell
/// variables would hand it over as a password, so `env` is refused first.
fn get_token(r: &Resolved, format: OutputFormat, source: &dyn Source) -> Result<(), Error> {
    if format == OutputFormat::Env {
        super::refuse_token(r, "--output env")?;
    }
    let token = source.token(r)?;
    let mut stdout = std::io::stdout().lock();
    output::write_token(&mut stdout, format, &token).map_err(Error::Output)
}
