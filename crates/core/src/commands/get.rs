//! `get`: the credential on stdout, as JSON, the bare password or shell variables.

use super::{connection, login};
use crate::config::Resolved;
use crate::error::Error;
use crate::output;
use crate::output::OutputFormat;
use crate::source::Source;

/// Prints the credential in `format` on stdout.
pub fn get(r: &Resolved, format: OutputFormat, source: &dyn Source) -> Result<(), Error> {
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
