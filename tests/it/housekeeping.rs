//! `list`, `clear` and `doctor`: what is cached, removing it, and what this machine offers.

use crate::support::counting::CountingServer;
use crate::support::{
    Sandbox, base_args as base, contract, prod_connection, stderr, stdout, unreachable_args,
    verified_upstream,
};

#[test]
fn list_shows_entries_without_secrets_and_clear_removes_them() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    for user in ["alice", "bob"] {
        let mut a = vec![
            "get",
            "--cluster-identifier",
            "examplecluster",
            "--db-user",
            user,
        ];
        a.extend(base(&url));
        contract(&sb.run(&a));
    }
    let mut a = vec![
        "get",
        "--cluster-identifier",
        "othercluster",
        "--db-user",
        "carol",
    ];
    a.extend(base(&url));
    contract(&sb.run(&a));

    let out = sb.run(&["list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("CONNECTION") && lines[0].contains("KIND"),
        "{text}"
    );
    assert!(
        text.contains("IAM:alice") && text.contains("IAM:bob") && text.contains("IAM:carol"),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("password") && l.contains(" file")),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("14m") || l.contains("15m")),
        "{text}"
    );
    assert!(!text.contains("counting-pw"), "no password in list: {text}");

    let out = sb.run(&["clear", "examplecluster"]);
    assert_eq!(
        stdout(&out),
        "removed 2 cached entries for \"examplecluster\"\n",
        "{}",
        stderr(&out)
    );
    let text = stdout(&sb.run(&["list"]));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("IAM:carol"));
    // The cleared entry is a miss now: the next get calls the API.
    let mut a = vec![
        "get",
        "--cluster-identifier",
        "examplecluster",
        "--db-user",
        "alice",
    ];
    a.extend(base(&url));
    assert_eq!(contract(&sb.run(&a))["DbPassword"], "counting-pw-4");

    let out = sb.run(&["clear", "--all"]);
    assert_eq!(stdout(&out), "removed 2 cached entries in all\n");
    assert_eq!(stdout(&sb.run(&["list"])), "no cached entries\n");
    assert!(sb.entries().is_empty());

    let out = sb.run(&["clear"]);
    assert_eq!(out.status.code(), Some(2), "clear needs a name or --all");
}

/// `doctor` in us-east-1 with the AWS endpoint at `url`.
fn doctor_at(url: &str) -> [&str; 5] {
    ["doctor", "--region", "us-east-1", "--endpoint-url", url]
}

#[test]
fn doctor_reports_store_credentials_config_and_lock_directory() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    sb.make_cache_dir(0o700);
    let out = sb.run(&doctor_at(&server.url()));
    let text = stdout(&out);
    assert!(text.contains("config file: "), "{text}");
    assert!(text.contains("(not found; optional)"), "{text}");
    assert!(
        text.contains(&format!(
            "cache and lock directory: {} (mode 700, yours, private)",
            sb.cache_dir().display()
        )),
        "{text}"
    );
    assert!(text.contains("cache store for --cache auto: "), "{text}");
    // Static test credentials resolve; the counting server is no STS, so the
    // principal check fails, and doctor says so and exits 1.
    assert!(
        text.contains(
            "FAIL AWS credentials: resolve (access key ***), but STS GetCallerIdentity failed: InvalidAction"
        ),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !text.contains("testing-secret-key-value"),
        "never the secret key"
    );

    // Without credentials, doctor says so.
    let out = sb
        .cmd(&doctor_at(&server.url()))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("FAIL AWS credentials: "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("sign in again"), "{}", stdout(&out));
}

#[test]
fn doctor_names_the_principal_from_sts() {
    let Some(moto) = crate::support::moto::Moto::start() else {
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .cmd(&doctor_at(&moto.url()))
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("ok   AWS credentials: resolve (access key AKIA...MPLE) to arn:aws:sts::123456789012:user/moto in account 123456789012"),
        "{text}"
    );
    assert!(!text.contains("testing-secret-key-value"));
}

#[test]
fn housekeeping_refuses_an_empty_cache_dir_like_get_does() {
    let sb = Sandbox::new();
    for args in [
        &["list"][..],
        &["clear", "--all"],
        &["get", "--cluster-identifier", "c", "--db-user", "u"],
    ] {
        let o = sb
            .cmd(args)
            .env("REDSHIFT_CREDS_CACHE_DIR", "")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(
            stderr(&o),
            "redshift-creds: error: invalid REDSHIFT_CREDS_CACHE_DIR \"\": must be a directory path\n",
            "{args:?}"
        );
    }
    // doctor reports it as a failed check instead.
    let o = sb
        .cmd(&["doctor"])
        .env("REDSHIFT_CREDS_CACHE_DIR", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL cache and lock directory: invalid REDSHIFT_CREDS_CACHE_DIR"),
        "{}",
        stdout(&o)
    );
}

#[cfg(unix)]
#[test]
fn list_and_clear_refuse_a_cache_directory_others_can_write() {
    let sb = Sandbox::new();
    sb.make_cache_dir(0o777);
    for args in [&["list"][..], &["clear", "--all"][..]] {
        let out = sb.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
        assert!(err.contains("open to other users (mode 777)"), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn list_skips_a_fifo_record_without_waiting_on_it() {
    let sb = Sandbox::new();
    sb.make_cache_dir(0o700);
    let fifo = sb.cache_dir().join(format!("{}.meta", "0".repeat(40)));
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = sb
        .cmd(&["list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("list hung on a FIFO record");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no cached entries\n");
}

#[test]
fn doctor_fails_without_a_region_like_get_does() {
    let sb = Sandbox::new();
    let args = [
        "--cluster-identifier",
        "c",
        "--db-user",
        "u",
        "--cache",
        "none",
    ];
    let mut doctor = vec!["doctor"];
    doctor.extend(args);
    let out = sb.run(&doctor);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("\nFAIL region: none: pass --region"),
        "{text}"
    );
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
    let mut get = vec!["get"];
    get.extend(args);
    assert_eq!(sb.run(&get).status.code(), Some(2), "get fails too");
}

#[test]
fn doctor_checks_a_named_connection_with_its_region_and_endpoint() {
    let Some(moto) = crate::support::moto::Moto::start() else {
        return;
    };
    moto.create_cluster("examplecluster");
    let sb = Sandbox::new();
    let config = sb.path().join("config.toml");
    std::fs::write(&config, prod_connection("alice", &moto.url(), "")).unwrap();
    let out = sb
        .cmd(&["doctor", "prod", "-v"])
        .env("REDSHIFT_CREDS_CONFIG", &config)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("ok   inputs: cluster \"examplecluster\", user \"alice\""),
        "{text}"
    );
    assert!(text.contains("ok   region: us-east-1"), "{text}");
    assert!(text.contains("ok   endpoint: examplecluster."), "{text}");
    assert!(
        text.contains("warn permission to call GetClusterCredentials: not checked"),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            ["ok   ", "warn ", "FAIL "]
                .iter()
                .any(|m| line.starts_with(m)),
            "one marked line per check: {line}"
        );
    }
}

#[test]
fn doctor_shows_the_cause_of_an_unreachable_endpoint() {
    let sb = Sandbox::new();
    let out = sb.run(&unreachable_args(
        "doctor",
        "http://nosuchhost.invalid:9",
        &["--api-timeout", "5"],
    ));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL AWS credentials: resolve (access key ***), but STS GetCallerIdentity failed: dispatch failure"), "{text}");
    assert!(
        text.contains("dns error"),
        "the cause, not just dispatch failure: {text}"
    );
}

#[test]
fn doctor_probes_the_store_with_a_fresh_key_and_leaves_nothing() {
    let sb = Sandbox::new();
    for _ in 0..2 {
        let out = sb.run(&[
            "doctor",
            "--region",
            "us-east-1",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ]);
        let text = stdout(&out);
        let line = text
            .lines()
            .find(|l| l.contains("cache store for --cache auto: "))
            .unwrap_or_else(|| panic!("{text}"));
        // A working keyring is ok; a fallback (the file store, or none) a warning.
        let keyring = line.contains("--cache auto: keyring (");
        let want = if keyring { "ok   " } else { "warn " };
        assert!(line.starts_with(want), "{line}");
    }
    assert!(sb.entries().is_empty(), "the probe is cleaned up");
}

#[test]
fn doctor_with_a_broken_config_file_says_so_and_checks_nothing_that_depends_on_it() {
    let sb = Sandbox::new();
    let config = sb.path().join("config.toml");
    std::fs::write(
        &config,
        "[connections.prod]\ncluster_identifier = \"c\"\nregion = \"us-east-1\"\n\
         endpoint_url = \"http://127.0.0.1:9\"\nport = \"25439\"\n",
    )
    .unwrap();
    let out = sb
        .cmd(&["doctor", "prod"])
        .env("REDSHIFT_CREDS_CONFIG", &config)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL config file: ")
            && text.contains("port must be a number, not a string: write 25439 without quotes"),
        "{text}"
    );
    assert!(
        text.contains("FAIL inputs: connection \"prod\" is not read: the config file is broken"),
        "{text}"
    );
    assert!(
        text.contains("warn region, AWS credentials, endpoint and TLS: not checked"),
        "{text}"
    );
    // No check made without the connection's endpoint_url and region.
    assert!(!text.contains("AWS credentials: resolve"), "{text}");
    assert!(!text.contains("FAIL region"), "{text}");
    assert!(text.contains("cache and lock directory: "), "{text}");
}

/// `doctor` for a connection to `pg` with verify-full and `root` as the sslrootcert.
fn doctor_tls(sb: &Sandbox, port: u16, root: &std::path::Path) -> String {
    let port = port.to_string();
    let out = sb.run(&unreachable_args(
        "doctor",
        "http://127.0.0.1:9",
        &[
            &["--api-timeout", "2"][..],
            &verified_upstream(&port, root.to_str().unwrap()),
        ]
        .concat(),
    ));
    stdout(&out)
}

#[cfg(unix)]
#[test]
fn doctor_tries_the_tls_handshake_with_the_database() {
    let Some(pg) = crate::support::pg::PgServer::builder()
        .self_signed()
        .start()
    else {
        return;
    };
    let sb = Sandbox::new();
    let root = pg.ca_cert.display().to_string();
    // The server's own self-signed CA certificate as the root: accepted.
    let text = doctor_tls(&sb, pg.port, &pg.ca_cert);
    assert!(
        text.contains(&format!(
            "ok   TLS: 127.0.0.1:{} answers with TLS 1.3, certificate accepted \
             (sslmode verify-full, sslrootcert {root})",
            pg.port
        )),
        "{text}"
    );
    // Another root: refused, in words.
    let other = crate::support::pg::other_ca(sb.path());
    let text = doctor_tls(&sb, pg.port, &other);
    assert!(
        text.contains(&format!(
            "FAIL TLS: TLS with 127.0.0.1:{} failed: it presents a CA certificate (CA:TRUE) as its own",
            pg.port
        )),
        "{text}"
    );
    // Nothing listening: not reachable from here, which is no failure of TLS.
    let closed = crate::support::free_port();
    let text = doctor_tls(&sb, closed, &pg.ca_cert);
    assert!(
        text.contains(&format!(
            "warn TLS: not checked: cannot connect to 127.0.0.1:{closed}"
        )),
        "{text}"
    );
}
