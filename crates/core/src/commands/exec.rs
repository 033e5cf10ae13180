//! `exec`: runs a command with the connection in its environment.

use super::{connection, login};
use crate::config::Resolved;
use crate::error::Error;
use crate::source::Source;
use crate::{output, report};
use std::ffi::OsString;

/// Runs the command with the connection in its environment. On Unix the
/// process becomes the command, so signals and the exit code are its own.
/// The password travels in the environment only, never in arguments.
pub fn exec(r: &Resolved, command: &[OsString], source: &dyn Source) -> Result<(), Error> {
    super::refuse_token(r, "exec")?;
    let tls = r.tls();
    let (credential, endpoint) = connection(r, &tls, source)?;
    let (program, args) = command.split_first().expect("clap requires a command");
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for (name, value) in output::pg_vars(&login(r, &tls, &credential, &endpoint)) {
        cmd.env(name, &*value);
    }
    let shown = program.to_string_lossy().into_owned();
    report::release();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let source = cmd.exec();
        Err(Error::Exec {
            program: shown,
            source,
        })
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(|source| Error::Exec {
            program: shown,
            source,
        })?;
        std::process::exit(status.code().unwrap_or(1));
    }
}
