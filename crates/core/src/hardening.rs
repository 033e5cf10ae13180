//! Process hardening done first thing by both executables: no core dump, and no ptrace or /proc peeking by other processes of the user.

/// Makes this process unable to leave a core dump holding a password or
/// `AWS_SECRET_ACCESS_KEY`: `RLIMIT_CORE` 0 (inherited by children, and
/// not raised back by an unprivileged process), and on Linux
/// `PR_SET_DUMPABLE` 0, which also keeps `/proc/<pid>/mem` and ptrace from
/// other processes of the same user. A client run by `exec` gets
/// `RLIMIT_CORE` 0 too; the dumpable flag is reset by the kernel at exec.
/// Failures are ignored: a hardening that the platform refuses must not
/// stop the run.
pub fn no_core_dumps() {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes one integer argument; the rest are unused.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_is_not_dumpable_and_has_no_core_limit() {
        super::no_core_dumps();
        // SAFETY: PR_GET_DUMPABLE takes no argument.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        assert_eq!(dumpable, 0);
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into a valid rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        assert_eq!((limit.rlim_cur, limit.rlim_max), (0, 0));
    }
}
