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
    // A TAB in the shell: answered here, from the clap definition, without
    // handing over to the full program.
    redshift_creds_core::complete::answer();
    front::run(std::env::args_os())
}
