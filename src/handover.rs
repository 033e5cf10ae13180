//! The hand-over from `redshift-creds` to `redshift-creds-aws`: the same arguments, the same environment, the same process.

use redshift_creds_core::error::Error;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// The file name of the full program, next to `redshift-creds`.
pub const FULL: &str = "redshift-creds-aws";

/// The full program's path: beside this executable (symlinks resolved, so a
/// link to `redshift-creds` elsewhere still finds it).
fn full_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name(format!("{FULL}{}", std::env::consts::EXE_SUFFIX)))
}

/// Replaces this process with the full program run on `args` (the first is
/// the program name, kept for messages), and returns only when that fails:
/// then with the error to report.
fn exec_full(args: &[OsString]) -> Error {
    let path = match full_path() {
        Ok(p) => p,
        Err(source) => {
            return Error::Helper {
                path: PathBuf::from(FULL),
                source,
            };
        }
    };
    let mut cmd = std::process::Command::new(&path);
    cmd.args(args.iter().skip(1));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if let Some(arg0) = args.first() {
            cmd.arg0(arg0);
        }
        let source = cmd.exec();
        Error::Helper { path, source }
    }
    #[cfg(not(unix))]
    {
        match cmd.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(source) => Error::Helper { path, source },
        }
    }
}

/// Hands the run over: held warnings are dropped, since the full program
/// notices and says them again, and this process becomes the full program.
/// Returns only when that fails, with the error to report.
pub fn hand_over(args: &[OsString]) -> Error {
    redshift_creds_core::report::discard();
    exec_full(args)
}

/// Runs the full program in place of this one, or reports why it cannot.
pub fn run_full(args: &[OsString]) -> ExitCode {
    let e = hand_over(args);
    redshift_creds_core::report::error(&e.to_string());
    ExitCode::from(e.exit_code())
}
