//! The hand-over from `redshift-creds` to `redshift-creds-aws`: the same arguments, the same environment, the same process.

use redshift_creds_core::error::Error;
use redshift_creds_core::source::REFRESH_AHEAD_ENV;
use std::ffi::OsString;
use std::path::PathBuf;

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
pub fn run_full(args: &[OsString]) -> u8 {
    let e = hand_over(args);
    redshift_creds_core::report::error(&e.to_string());
    e.exit_code()
}

/// Starts the background refresh of the entry this run answered from inside
/// the refresh margin: the full program on the same arguments, told by
/// [`REFRESH_AHEAD_ENV`] to refresh only and print nothing, holding the
/// key's `marker` (inherited across exec) until it exits, so that at most
/// one runs per key. It is detached and never waited for: its own session,
/// no terminal, stdin, stdout and stderr on /dev/null, and forked twice so
/// that init (or the subreaper) is its parent and reaps it, even when this
/// process goes on to exec the user's command.
#[cfg(unix)]
pub fn refresh_ahead(args: &[OsString], marker: std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let fd = marker.as_raw_fd();
    let mut cmd = std::process::Command::new(full_path()?);
    cmd.args(args.iter().skip(1))
        .env(REFRESH_AHEAD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // calls (fcntl, fork, _exit, setsid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 if libc::setsid() < 0 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                // The middle process: its exit orphans the refresh at once.
                _ => libc::_exit(0),
            }
        });
    }
    // Returns once the refresh has exec'd (or failed to); the middle
    // process has exited by then, and is reaped here.
    cmd.spawn()?.wait()?;
    drop(marker);
    Ok(())
}

/// No background refresh off Unix: the caller hands over instead.
#[cfg(not(unix))]
pub fn refresh_ahead(_args: &[OsString], _marker: std::fs::File) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
