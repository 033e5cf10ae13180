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
        let zero = rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        let _ = rustix::process::setrlimit(rustix::process::Resource::Core, zero);
    }
    #[cfg(target_os = "linux")]
    {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_is_not_dumpable_and_has_no_core_limit() {
        use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};
        super::no_core_dumps();
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
        let limit = getrlimit(Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
    }
}
