//! redshift-creds: short-lived Amazon Redshift credentials behind a credential-process contract.
//!
//! `run` is the whole program; `main` only calls it. The cache-hit path reads
//! one entry and prints it: it builds no async runtime, loads no AWS
//! configuration and takes no lock. Only a miss reaches [`aws`].

mod app;
mod aws;
mod cache;
pub mod cli;
mod config;
mod credential;
mod error;
mod output;
mod report;
mod rules;

pub use error::Error;

use clap::Parser;
use cli::{Cli, Command, GetArgs};
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the program on these arguments (the first is the program name) and
/// returns its exit code. Errors are printed here, once.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap prints them on stdout, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            report::error(&one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Get(args) => get(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Flattens a clap usage error into one line: the message, the valid values
/// when clap lists them, and where to find help.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect();
    let message = parts.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{message} (see --help)")
}

fn get(args: &GetArgs) -> Result<(), Error> {
    report::init_log(args.verbose);
    let (request, settings) = config::resolve(args, &config::ProcessEnv)?;
    let key = cache::key::CacheKey::of(&request);
    let mut cache = cache::Cache::open(
        settings.cache,
        key,
        settings.cache_dir.clone(),
        settings.lock_timeout,
    )?;
    let source = aws::RedshiftSource {
        request: &request,
        api_timeout: settings.api_timeout,
    };
    let (credential, outcome) = app::obtain(
        &mut cache,
        &source,
        &app::SystemClock,
        settings.refresh_margin,
    )?;
    tracing::debug!(?outcome, store = %cache.store().name(), "credential ready");
    output::write(&mut std::io::stdout().lock(), settings.output, &credential)
        .map_err(Error::Output)
}
