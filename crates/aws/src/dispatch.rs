//! The full program's dispatcher: parses the arguments, runs the command, and prints any error once.

use crate::source::Aws;
use clap::Parser;
use redshift_creds_core::cli::{self, Cli, Command, ConnArgs, CredArgs};
use redshift_creds_core::commands;
use redshift_creds_core::config::Resolved;
use redshift_creds_core::env::{Env, ProcessEnv};
use redshift_creds_core::source::{self, Source};
use redshift_creds_core::{Error, housekeeping, print_document, report, slips};
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the program on these arguments (the first is the program name) and
/// returns its exit code. Errors are printed here, once.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(slip) = slips::accepted(&args) {
        return usage_error(slip);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap prints them on stdout, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => match slips::refused(&e, &args) {
            Some(slip) => return usage_error(slip),
            None => {
                report::error(&cli::usage_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    match dispatch(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            report::error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints a usage slip on stderr; exit code 2.
fn usage_error(slip: slips::Slip) -> ExitCode {
    match slip {
        slips::Slip::Help(text) => eprint!("{text}"),
        slips::Slip::Line(line) => report::error(&line),
    }
    ExitCode::from(2)
}

/// Runs one command; `Ok(false)` is a run that failed without an error to
/// print (a `doctor` that found problems).
fn dispatch(command: Command) -> Result<bool, Error> {
    if ProcessEnv
        .var_os(source::REFRESH_AHEAD_ENV)
        .is_some_and(|v| v == "1")
    {
        return refresh_ahead(command);
    }
    // The proxy starts its own service log; `clear` logs at the default level.
    let verbose = match &command {
        Command::Get(a) => Some(a.cred.verbose),
        Command::Exec(a) => Some(a.cred.verbose),
        Command::Pgpass(a) => Some(a.cred.verbose),
        Command::Doctor(a) => Some(a.cred.verbose),
        _ => None,
    };
    if let Some(v) = verbose {
        report::init_log(v);
    }
    let mut stdout = std::io::stdout().lock();
    match command {
        Command::Get(a) if let Some(idc) = crate::signin::wanted(&a.cred)? => {
            crate::signin::get(&idc, a.output, &mut stdout).map(|()| true)
        }
        Command::Exec(a) if crate::signin::wanted(&a.cred)?.is_some() => {
            Err(crate::signin::refused("exec"))
        }
        Command::Pgpass(a) if crate::signin::wanted(&a.cred)?.is_some() => {
            Err(crate::signin::refused("pgpass"))
        }
        Command::Get(a) => with_aws(&a.cred, &a.conn, |r, aws| commands::get(r, a.output, aws)),
        Command::Exec(a) => with_aws(&a.cred, &a.conn, |r, aws| {
            commands::exec(r, &a.command, aws)
        }),
        Command::Pgpass(a) => with_aws(&a.cred, &a.conn, |r, aws| {
            commands::pgpass(r, a.watch, a.quiet, aws)
        }),
        Command::Proxy(a) => crate::proxy::proxy(&a),
        Command::List => housekeeping::list(&mut stdout).map(|()| true),
        Command::Clear(a) => {
            report::init_log(0);
            housekeeping::clear(&a, &mut stdout).map(|()| true)
        }
        Command::Doctor(a) => crate::doctor::doctor(&a, &mut stdout),
        Command::Completions { shell } => {
            print_document(&redshift_creds_core::complete::script(shell)).map(|()| true)
        }
        Command::Man => print_document(&redshift_creds_core::man::page()).map(|()| true),
    }
}

/// The background refresh the front starts inside the refresh margin: the
/// request's credential, refreshed under the refresh lock (or found already
/// refreshed by another process), and nothing printed or run.
fn refresh_ahead(command: Command) -> Result<bool, Error> {
    let refresh = |r: &Resolved, aws: &Aws| aws.credential(r).map(drop);
    match command {
        Command::Get(a) => with_aws(&a.cred, &a.conn, refresh),
        Command::Exec(a) => with_aws(&a.cred, &a.conn, refresh),
        Command::Pgpass(a) => with_aws(&a.cred, &a.conn, refresh),
        _ => Ok(true),
    }
}

/// Resolves the flags, then runs `command` with the [`Aws`] source.
fn with_aws(
    cred: &CredArgs,
    conn: &ConnArgs,
    command: impl FnOnce(&Resolved, &Aws) -> Result<(), Error>,
) -> Result<bool, Error> {
    let r = commands::resolve(cred, conn)?;
    let aws = Aws::new(&r);
    command(&r, &aws).map(|()| true)
}
