//! redshift-creds-core: everything of redshift-creds that needs no AWS SDK.
//!
//! Both executables are thin mains over this crate: `redshift-creds` (the
//! root package) answers cache hits with it and hands the rest over;
//! `redshift-creds-aws` (crate `redshift-creds-aws`) adds the AWS sources.
//! This crate must never depend on aws-*, tokio, hyper or rustls; see
//! ARCHITECTURE.md for the glossary and the path of a hit and of a miss.

pub mod cache;
pub mod candidates;
pub mod choice;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod config;
pub mod config_file;
pub mod credential;
pub mod endpoint;
pub mod env;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hardening;
pub mod housekeeping;
pub mod man;
pub mod output;
pub mod pgpass;
pub mod private_fs;
pub mod report;
pub mod rules;
pub mod signin;
pub mod slips;
pub mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod token;

pub use error::Error;
pub use source::Source;

/// Prints a generated document; a reader that stops early (`| head`) is fine.
pub fn print_document(text: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Output(e)),
        _ => Ok(()),
    }
}
