//! The `redshift-creds` executable: parse, run, exit with the code the error maps to.

use std::process::ExitCode;

fn main() -> ExitCode {
    redshift_creds::run(std::env::args_os())
}
