//! The front's dispatcher and its [`Source`]: a lock-free cache hit, or the whole run handed to `redshift-creds-aws`.

use crate::handover;
use clap::Parser;
use redshift_creds_core::cli::{Command, CredArgs, FrontExec, FrontGet, OnlyExec, OnlyGet};
use redshift_creds_core::config::Resolved;
use redshift_creds_core::credential::Credential;
use redshift_creds_core::endpoint::Endpoint;
use redshift_creds_core::output::OutputFormat;
use redshift_creds_core::token::IdcToken;
use redshift_creds_core::{Error, Source, commands, report, source};
use std::ffi::OsString;

/// Answers `get` and `exec` from the cache, and hands everything else (a
/// miss, `pgpass`, other commands, `-v`, any error) to `redshift-creds-aws`,
/// which then does the whole job as if called directly. So the front never
/// reports an error of its own making: the full program reports it, once.
/// The front takes no lock of any kind: `pgpass` writes a file under a
/// lock, so it always goes to the full program, and a lock timeout is never
/// waited out twice.
/// Warnings are held until the front knows it will finish.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let args: Vec<OsString> = args.into_iter().collect();
    // Only the subcommand a hit can answer is built; anything else, help and every
    // error included, is the full program's.
    let parsed = match args.get(1).and_then(|a| a.to_str()) {
        Some("get") => FrontGet::try_parse_from(&args).map(|c| {
            let OnlyGet::Get(a) = c.command;
            Command::Get(a)
        }),
        Some("exec") => FrontExec::try_parse_from(&args).map(|c| {
            let OnlyExec::Exec(a) = c.command;
            Command::Exec(a)
        }),
        _ => return handover::run_full(&args),
    };
    let Ok(command) = parsed else {
        return handover::run_full(&args);
    };
    // A slip is told by the full program, like every other usage error.
    if redshift_creds_core::slips::accepted(&args).is_some() {
        return handover::run_full(&args);
    }
    // A logged run is told whole by the full program.
    let logging =
        redshift_creds_core::env::Env::var_os(&redshift_creds_core::env::ProcessEnv, "RUST_LOG")
            .is_some_and(|v| !v.is_empty());
    let quiet = |c: &CredArgs| c.verbose == 0 && !logging;
    let source = HandOver(&args);
    report::hold();
    // An Identity Center sign-in (`--idc-issuer-url`): a cached token, else
    // the full program; exec and any doubt go to it too (it refuses or reports).
    // Asked once: with a connection name it reads the config file.
    let cred = match &command {
        Command::Get(a) => &a.cred,
        Command::Exec(a) => &a.cred,
        _ => return handover::run_full(&args),
    };
    let Ok(signin) = redshift_creds_core::signin::wanted(cred) else {
        return handover::run_full(&args);
    };
    let result = match (command, signin) {
        (Command::Get(a), Some(idc)) if quiet(&a.cred) && a.output != OutputFormat::Env => {
            token_hit(&idc, a.output, &args)
        }
        (Command::Get(a), None) if quiet(&a.cred) => {
            commands::resolve(&a.cred, &a.conn).and_then(|r| commands::get(&r, a.output, &source))
        }
        (Command::Exec(a), None) if quiet(&a.cred) => commands::resolve(&a.cred, &a.conn)
            .and_then(|r| commands::exec(&r, &a.command, &source)),
        _ => return handover::run_full(&args),
    };
    finish(result, &args)
}

/// A sign-in's cached access token on stdout (no lock, no runtime), or the
/// whole run handed over.
fn token_hit(
    idc: &redshift_creds_core::signin::Idc,
    format: OutputFormat,
    args: &[OsString],
) -> Result<(), Error> {
    match redshift_creds_core::signin::cached_token(idc)? {
        Some(t) => {
            let mut stdout = std::io::stdout().lock();
            redshift_creds_core::output::write_token(&mut stdout, format, &t).map_err(Error::Output)
        }
        None => Err(handover::hand_over(args)),
    }
}

/// The exit of a run the front kept.
fn finish(result: Result<(), Error>, args: &[OsString]) -> u8 {
    match result {
        Ok(()) => {
            report::release();
            0
        }
        // Past the point of no return (something reached stdout, the
        // command was about to replace this process, or the hand-over itself
        // failed): say it here rather than try again.
        Err(e @ (Error::Output(_) | Error::Exec { .. } | Error::Helper { .. })) => {
            report::release();
            report::error(&e.to_string());
            e.exit_code()
        }
        Err(_) => handover::run_full(args),
    }
}

/// The front's [`Source`]: a cached entry read without a lock, and on a miss
/// the whole run handed to `redshift-creds-aws`, which starts over with the
/// same arguments (and is the only program that takes any lock: the refresh
/// lock, and the pgpass lock, since `pgpass` always goes to it).
/// Returns only when the hand-over itself failed.
struct HandOver<'a>(&'a [OsString]);

impl Source for HandOver<'_> {
    /// Inside the refresh margin (refresh-ahead on, password still valid),
    /// the cached password is the answer too, and this process starts the
    /// key's one background refresh if none is running; if it cannot, it
    /// hands over and the caller waits, as with refresh-ahead off.
    fn credential(&self, r: &Resolved) -> Result<Credential, Error> {
        match source::cached_credential_ahead(r)? {
            Some(source::Hit {
                credential,
                ahead: Some(marker),
            }) => match handover::refresh_ahead(self.0, marker) {
                Ok(()) => Ok(credential),
                Err(_) => Err(handover::hand_over(self.0)),
            },
            Some(hit) => Ok(hit.credential),
            None => Err(handover::hand_over(self.0)),
        }
    }

    fn endpoint(&self, r: &Resolved) -> Result<Endpoint, Error> {
        match source::cached_endpoint(r)? {
            Some(hit) => Ok(hit),
            None => Err(handover::hand_over(self.0)),
        }
    }

    /// A cached token that outlives the refresh margin, read like a
    /// password hit (no lock, no runtime); anything else is handed over.
    fn token(&self, r: &Resolved) -> Result<IdcToken, Error> {
        match source::cached_token(r)? {
            Some(hit) => Ok(hit),
            None => Err(handover::hand_over(self.0)),
        }
    }
}
