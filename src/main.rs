//! The `redshift-creds` executable: answers cache hits, hands the rest to `redshift-creds-aws`.
//!
//! This package links only the SDK-free core (see ARCHITECTURE.md): a hit
//! reads one entry and prints it, with no async runtime, no AWS
//! configuration and no lock.
//!
//! It has a C `main` of its own (`no_main`): std's start-up would first find
//! the main thread's stack guard, which glibc does by reading and scanning
//! `/proc/self/maps`, a tenth of a hit's work. The two things of it the front
//! relies on are done here: SIGPIPE is ignored (a closed stdout is an error to
//! report, not a kill), and stdout is flushed before the exit. The arguments
//! still come from `std::env::args_os`, which glibc's start-up hands to std.
// The unit-test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

#[cfg_attr(test, allow(dead_code))]
mod front;
#[cfg_attr(test, allow(dead_code))]
mod handover;

#[cfg(not(test))]
use std::io::Write;

/// The process entry point, called by the C runtime; returns the exit code.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    redshift_creds_core::hardening::no_core_dumps();
    // A TAB in the shell: answered here, from the clap definition, without
    // handing over to the full program.
    redshift_creds_core::complete::answer();
    let code = front::run(std::env::args_os());
    let _ = std::io::stdout().flush();
    libc::c_int::from(code)
}
