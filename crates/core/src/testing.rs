//! Helpers that unit tests in several modules and crates share: a resolved request from flags, a fake environment and a clock the test sets.

use crate::cli::{Cli, Command};
use crate::config::{Env, Request, Resolved, Settings, resolve};
use crate::error::Error;
use clap::Parser;
use std::collections::HashMap;

/// An environment read from a map instead of the process.
pub struct MapEnv(pub HashMap<String, String>);

impl Env for MapEnv {
    fn var_os(&self, name: &str) -> Option<std::ffi::OsString> {
        self.0.get(name).map(Into::into)
    }
}

/// Resolves `get` with these flags (plus a cluster and user when absent) and environment.
pub fn try_resolve(flags: &[&str], env: &[(&str, &str)]) -> Result<(Request, Settings), Error> {
    try_resolve_all(flags, env).map(|r| (r.request, r.settings))
}

/// Like [`try_resolve`], the whole resolved config.
pub fn try_resolve_all(flags: &[&str], env: &[(&str, &str)]) -> Result<Resolved, Error> {
    let mut argv = vec!["redshift-creds", "get"];
    let has = |f: &str| flags.contains(&f);
    if !has("--cluster-identifier") && !has("--host") && !has("--workgroup") {
        argv.extend(["--cluster-identifier", "examplecluster"]);
    }
    let serverless_host = flags.iter().any(|f| f.contains("redshift-serverless"));
    let no_user = has("--with-iam") || has("--identity-center");
    if !has("--db-user") && !no_user && !has("--workgroup") && !serverless_host {
        argv.extend(["--db-user", "temp_creds_user"]);
    }
    argv.extend_from_slice(flags);
    let Command::Get(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let env = MapEnv(
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    resolve(&args.cred, &args.conn, &env)
}

/// A checked request for the example cluster with these extra flags and environment.
pub fn request_with(flags: &[&str], env: &[(&str, &str)]) -> Request {
    try_resolve(flags, env).unwrap().0
}

/// A clock the test sets: seconds since the Unix epoch.
pub struct FakeClock(pub std::cell::Cell<i64>);

impl crate::cache::refresh::Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.get()
    }
}
