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
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
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
