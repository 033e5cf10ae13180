//! Test peers shared by every test crate and bench/: a real PostgreSQL ([`pg`]), the fake
//! Redshift API ([`counting`]), a fake Redshift server for token logins ([`redshift_idp`]), a fake SSO-OIDC API
//! ([`sso_oidc`]), the HTTP server under the fake APIs ([`http`]),
//! and the rule for a missing tool (strict runs fail, others skip loudly).

pub mod counting;
pub mod http;
pub mod pg;
pub mod redshift_idp;
pub mod sso_oidc;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Whether this run must have every real peer (set by tests/run.sh). When
/// set, a missing tool fails the test instead of skipping it.
pub fn strict() -> bool {
    std::env::var_os("REDSHIFT_CREDS_TEST_STRICT").is_some_and(|v| v == "1")
}

/// A test that cannot run here: under tests/run.sh (strict) a failure,
/// otherwise a loud skip, straight to the process's stderr (the harness
/// captures `eprintln!` of passing tests, and a skip must be seen).
pub fn skip_or_fail(why: &str) {
    assert!(!strict(), "cannot run: {why}; tests/run.sh must not skip");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Finds an external tool ($`env_override`, else PATH), or decides what to do
/// without it: see [`skip_or_fail`].
pub fn require_tool(name: &str, env_override: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_override) {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_or_fail(&format!(
            "`{name}` is not installed (set {env_override} or run tests/run.sh, which installs it)"
        ));
    }
    found
}

/// Runs a command to completion, panicking with `what`, its status and output on failure.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A free loopback port (released: another process may take it first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
