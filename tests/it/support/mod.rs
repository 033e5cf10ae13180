//! Shared test support: the binaries under a clean environment, the argument builder, and moto; the counting server and PostgreSQL come from `redshift-creds-testkit`.
#![allow(dead_code)]

pub mod moto;

pub use redshift_creds_testkit::{
    counting, free_port, pg, require_tool, run_ok, skip_or_fail, strict,
};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redshift-creds"))
}

/// Whether the tests run as root (needed to make files of another user).
#[cfg(unix)]
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A scratch home for one test: its own HOME, cache directory and AWS files,
/// so nothing from the machine's user leaks in.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The file-store and lock directory this sandbox uses.
    pub fn cache_dir(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// Makes [`Sandbox::cache_dir`] (if missing) with this mode.
    #[cfg(unix)]
    pub fn make_cache_dir(&self, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.cache_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    /// `redshift-creds ARGS` with a clean environment: fake static AWS
    /// credentials, no IMDS, no D-Bus, a private cache directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.command(bin(), args)
    }

    /// Any program with the same clean environment (for wrappers such as
    /// `keyctl session -` and `dbus-run-session`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret-key-value")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path().join("aws-credentials"),
            )
            .env("REDSHIFT_CREDS_CACHE_DIR", self.cache_dir())
            .args(args);
        c
    }

    /// `redshift-creds ARGS` reading the config file at `config`, run to completion.
    pub fn run_with_config(&self, config: &Path, args: &[&str]) -> Output {
        self.cmd(args)
            .env("REDSHIFT_CREDS_CONFIG", config)
            .output()
            .unwrap()
    }

    /// Runs `redshift-creds ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Starts `n` runs of `redshift-creds ARGS` at once, then collects every
    /// output: a burst of concurrent callers.
    pub fn run_many(&self, args: &[&str], n: usize) -> Vec<Output> {
        run_all((0..n).map(|_| self.cmd(args)))
    }

    /// The cache files (entries and locks), by name.
    pub fn cache_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.cache_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The cached entries' contents, by name.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        self.cache_files()
            .into_iter()
            .filter(|n| n.ends_with(".json"))
            .map(|n| {
                let bytes = std::fs::read(self.cache_dir().join(&n)).unwrap();
                (n, bytes)
            })
            .collect()
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses the contract object from stdout, checking it is the only thing there.
pub fn contract(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    let text = stdout(o);
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "one line: {text:?}"
    );
    serde_json::from_str(&text).unwrap()
}

/// The password in a contract object.
pub fn password(o: &Output) -> String {
    contract(o)["DbPassword"].as_str().unwrap().to_string()
}

/// The credential flags most suites use: examplecluster as alice in
/// us-east-1 at `url`, cached in files, then `extra`.
pub fn cred_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let head = [
        "--cluster-identifier",
        "examplecluster",
        "--db-user",
        "alice",
    ];
    around_base(&head, url, extra)
}

/// `head`, then [`base_args`] for `url`, then `extra`.
pub fn around_base<'a>(head: &[&'a str], url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = head.to_vec();
    v.extend(base_args(url));
    v.extend_from_slice(extra);
    v
}

/// A config file's `[connections.prod]`: examplecluster as `db_user` in us-east-1 at
/// `url`, then the `extra` lines.
pub fn prod_connection(db_user: &str, url: &str, extra: &str) -> String {
    format!(
        "[connections.prod]\ncluster_identifier = \"examplecluster\"\ndb_user = \"{db_user}\"\n\
         region = \"us-east-1\"\nendpoint_url = \"{url}\"\n{extra}"
    )
}

/// The flags every API needs besides its target: us-east-1 at `url`, cached in files.
pub fn base_args(url: &str) -> Vec<&str> {
    let mut v = vec!["--region", "us-east-1", "--endpoint-url", url];
    v.extend(["--cache", "file"]);
    v
}

/// `get` for the `analytics` workgroup served at analytics.example.com, in us-east-1,
/// cached in files; at `url` when given (else wherever the environment says).
pub fn serverless_get(url: Option<&str>) -> Vec<&str> {
    let mut v = vec!["get", "--workgroup", "analytics"];
    v.extend(["--host", "analytics.example.com", "--region", "us-east-1"]);
    if let Some(url) = url {
        v.extend(["--endpoint-url", url]);
    }
    v.extend(["--cache", "file"]);
    v
}

/// `command` for cluster `c` as user `u` in us-east-1 at `url` (an endpoint that
/// need not answer), then `extra`: for runs that never get as far as a password.
pub fn unreachable_args<'a>(command: &'a str, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![command, "--cluster-identifier", "c", "--db-user", "u"];
    v.extend(["--region", "us-east-1", "--endpoint-url", url]);
    v.extend_from_slice(extra);
    v
}

/// The upstream flags for a PostgreSQL on 127.0.0.1 at `port`, verified (verify-full)
/// against the root certificate at `root`.
pub fn verified_upstream<'a>(port: &'a str, root: &'a str) -> [&'a str; 8] {
    [
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--sslmode",
        "verify-full",
        "--sslrootcert",
        root,
    ]
}

/// `get` with [`cred_args`].
pub fn get_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["get"];
    v.extend(cred_args(url, extra));
    v
}

/// A directory that every user can reach holding both binaries (0755), for tests that
/// run them as another uid: the checkout's target/debug may sit under a private directory
/// (a `mktemp -d` clone, a 0700 home) that such a user cannot traverse. Made once per test
/// process, in a fresh temporary directory (under /tmp when `$TMPDIR`'s ancestors are not
/// world-traversable), and removed when the process exits.
#[cfg(unix)]
pub fn bin_for_other_users() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let traversable = |d: &Path| {
            d.ancestors()
                .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
        };
        let base = std::env::temp_dir();
        let base = if traversable(&base) {
            base
        } else {
            PathBuf::from("/tmp")
        };
        let dir = tempfile::Builder::new()
            .prefix("redshift-creds-bin")
            .tempdir_in(base)
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for program in ["redshift-creds", "redshift-creds-aws"] {
            let to = dir.join(program);
            // A hard link costs nothing on the same file system; a copy otherwise.
            if std::fs::hard_link(bin().with_file_name(program), &to).is_err() {
                std::fs::copy(bin().with_file_name(program), &to).unwrap();
            }
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        extern "C" fn remove() {
            if let Some(dir) = DIR.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        // SAFETY: registers a plain function with no preconditions, run at exit().
        unsafe { libc::atexit(remove) };
        dir
    })
    .clone()
}

/// Starts every command at once, then collects every output: a burst of concurrent callers.
pub fn run_all(commands: impl IntoIterator<Item = Command>) -> Vec<Output> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}
