//! The `redshift-creds-aws` executable: the whole program, AWS SDK included; `redshift-creds` hands it what the cache cannot answer.

use std::process::ExitCode;

fn main() -> ExitCode {
    redshift_creds_core::hardening::no_core_dumps();
    redshift_creds_core::complete::answer();
    redshift_creds_aws::run(std::env::args_os())
}
