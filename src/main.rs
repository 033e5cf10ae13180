//! The `redshift-creds` executable: answers cache hits, hands the rest to `redshift-creds-aws`.
//!
//! This package links only the SDK-free core (see ARCHITECTURE.md): a hit
//! reads one entry and prints it, with no async runtime, no AWS
//! configuration and no lock.

mod front;
mod handover;

use std::process::ExitCode;

fn main() -> ExitCode {
    redshift_creds_core::hardening::no_core_dumps();
    front::run(std::env::args_os())
}
