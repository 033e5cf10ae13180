//! The `redshift-creds` executable: answers cache hits, hands the rest to `redshift-creds-aws`.

use std::process::ExitCode;

fn main() -> ExitCode {
    redshift_creds::front(std::env::args_os())
}
