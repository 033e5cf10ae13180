//! `exec` and `--output env`: the connection handed to a command, with endpoint discovery and TLS rules.

use crate::support::counting::CountingServer;
use crate::support::moto::Moto;
use crate::support::{Sandbox, contract, run_ok, stderr, stdout};
use std::collections::HashMap;

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    crate::support::cred_args(url, extra)
}

fn cmd<'a>(sub: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![sub];
    v.extend_from_slice(rest);
    v
}

/// Evaluates `--output env` in sh and returns the variables it set.
fn eval_env(output: &str) -> HashMap<String, String> {
    let script = format!(
        "{output}\nfor v in PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSSLMODE PGSSLROOTCERT; do \
         eval \"printf '%s=%s\\n' $v \\\"\\${{$v-<unset>}}\\\"\"; done"
    );
    let out = run_ok(
        std::process::Command::new("sh").arg("-c").arg(&script),
        "sh",
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(_, v)| *v != "<unset>")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_output_finds_the_endpoint_with_describe_clusters_once() {
    let Some(moto) = Moto::start() else { return };
    moto.create_cluster("examplecluster");
    let url = moto.url();
    let sb = Sandbox::new();
    let env_args = cmd("get", &args(&url, &["--db-name", "dev", "--output", "env"]));
    let first = sb.run(&env_args);
    assert!(first.status.success(), "{}", stderr(&first));
    let vars = eval_env(&stdout(&first));
    assert!(vars["PGHOST"].starts_with("examplecluster."), "{vars:?}");
    assert!(
        vars["PGHOST"].ends_with(".us-east-1.redshift.amazonaws.com"),
        "{vars:?}"
    );
    assert_eq!(vars["PGPORT"], "5439");
    assert_eq!(vars["PGDATABASE"], "dev");
    assert_eq!(vars["PGUSER"], "IAM:alice");
    assert_eq!(vars["PGSSLMODE"], "verify-full");
    // The password is the one the JSON form gives.
    let json = contract(&sb.run(&cmd("get", &args(&url, &["--db-name", "dev"]))));
    assert_eq!(vars["PGPASSWORD"], json["DbPassword"].as_str().unwrap());
    // Both the endpoint and the password come from the cache now.
    let requests = moto.requests();
    let again = sb.run(&env_args);
    assert_eq!(stdout(&again), stdout(&first));
    assert_eq!(
        moto.requests(),
        requests,
        "no DescribeClusters or GetClusterCredentials"
    );
}

#[test]
fn a_denied_describe_clusters_asks_for_host_and_spends_no_password() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&cmd("get", &args(&url, &["--output", "env"])));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("DescribeClusters failed"), "{err}");
    assert!(err.contains("access denied"), "{err}");
    assert!(err.contains("pass --host"), "{err}");
    assert_eq!(server.calls(), 0, "no GetClusterCredentials call was spent");

    // With --host, no DescribeClusters at all.
    let out = sb.run(&cmd(
        "get",
        &args(&url, &["--output", "env", "--host", "db.example.com"]),
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let vars = eval_env(&stdout(&out));
    assert_eq!(vars["PGHOST"], "db.example.com");
    assert_eq!(vars["PGPORT"], "5439");
    assert_eq!(server.describe_calls(), 1);
}

#[test]
fn both_endpoint_lookups_fail_alike_on_denial_and_on_a_bad_answer() {
    let cluster = [
        "--cluster-identifier",
        "examplecluster",
        "--db-user",
        "alice",
    ];
    let workgroup = ["--workgroup", "analytics", "--db-name", "dev"];
    for (who, api, permission) in [
        (
            &cluster,
            "DescribeClusters",
            "redshift:GetClusterCredentials",
        ),
        (
            &workgroup,
            "GetWorkgroup",
            "redshift-serverless:GetCredentials",
        ),
    ] {
        for (endpoint, says) in [
            (None, "access denied (".to_string()),
            (
                None,
                format!("; the principal may hold only {permission}; pass --host"),
            ),
            (
                Some(("bad host!", 5439)),
                "the reported endpoint address was refused".into(),
            ),
            (
                Some(("db.example.com", 0)),
                "the reported endpoint port 0 was refused".into(),
            ),
        ] {
            let server = CountingServer::start();
            server.set_describe_endpoint(endpoint);
            let url = server.url();
            let mut a = vec!["get", "--output", "env"];
            a.extend_from_slice(who);
            a.extend(crate::support::base_args(&url));
            let out = Sandbox::new().run(&a);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{api}: {err}");
            assert!(out.stdout.is_empty(), "{api}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(&format!("{api} failed for ")), "{err}");
            assert!(err.contains(&says), "{api}: {says}: {err}");
        }
    }
}

#[test]
fn a_discovered_endpoint_is_cached_and_port_can_be_overridden() {
    let host = "examplecluster.abc123.us-east-1.redshift.amazonaws.com";
    let server = CountingServer::describing(host, 5440);
    let url = server.url();
    let sb = Sandbox::new();
    for _ in 0..3 {
        let out = sb.run(&cmd("get", &args(&url, &["--output", "env"])));
        let vars = eval_env(&stdout(&out));
        assert_eq!(vars["PGHOST"], host);
        assert_eq!(vars["PGPORT"], "5440");
    }
    let out = sb.run(&cmd(
        "get",
        &args(&url, &["--output", "env", "--port", "6000"]),
    ));
    assert_eq!(eval_env(&stdout(&out))["PGPORT"], "6000");
    assert_eq!(
        server.describe_calls(),
        1,
        "one DescribeClusters for four runs"
    );
    assert_eq!(server.calls(), 1, "one GetClusterCredentials for four runs");
}

#[test]
fn tls_modes_without_encryption_are_refused() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    for mode in ["disable", "allow", "prefer"] {
        for sub in ["get", "exec", "pgpass"] {
            let mut a = cmd(
                sub,
                &args(&url, &["--host", "db.example.com", "--sslmode", mode]),
            );
            if sub == "exec" {
                a.extend(["--", "true"]);
            }
            let out = sb.run(&a);
            assert_eq!(out.status.code(), Some(2), "{sub} {mode}");
            assert!(out.stdout.is_empty());
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("connections without TLS are refused"), "{err}");
        }
    }
    let out = sb.run(&cmd(
        "get",
        &args(&url, &["--sslrootcert", "/nonexistent/ca.pem"]),
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--sslrootcert"));
    let out = sb.run(&cmd("get", &args(&url, &["--host", "bad host"])));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(server.calls(), 0);
}

#[test]
fn exec_passes_secrets_in_the_environment_only_and_becomes_the_command() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let ca = sb.path().join("ca.pem");
    std::fs::write(&ca, b"not checked here").unwrap();
    let script = "printf '%s\\n' \"$$\" \"$PGHOST\" \"$PGPORT\" \"$PGUSER\" \"$PGPASSWORD\" \"$PGSSLMODE\" \"$PGSSLROOTCERT\"; \
                  tr '\\0' ' ' </proc/$$/cmdline; echo";
    let a = cmd(
        "exec",
        &args(
            &url,
            &[
                "--host",
                "127.0.0.1",
                "--port",
                "5433",
                "--sslmode",
                "verify-ca",
                "--sslrootcert",
                ca.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                script,
            ],
        ),
    );
    let child = sb
        .cmd(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        pid.to_string(),
        "the command replaced redshift-creds (same pid)"
    );
    assert_eq!(
        &lines[1..7],
        [
            "127.0.0.1",
            "5433",
            "IAM:alice",
            "counting-pw-1",
            "verify-ca",
            ca.to_str().unwrap()
        ]
    );
    assert!(
        !lines[7].contains("counting-pw-1"),
        "the password is not in argv: {}",
        lines[7]
    );
    assert!(lines[7].starts_with("sh -c"), "{}", lines[7]);
}

#[test]
fn exec_keeps_the_commands_exit_code_and_signals() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&cmd(
        "exec",
        &args(
            &url,
            &["--host", "db.example.com", "--", "sh", "-c", "exit 7"],
        ),
    ));
    assert_eq!(out.status.code(), Some(7));
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let out = sb.run(&cmd(
            "exec",
            &args(
                &url,
                &[
                    "--host",
                    "db.example.com",
                    "--",
                    "sh",
                    "-c",
                    "kill -TERM $$",
                ],
            ),
        ));
        assert_eq!(out.status.signal(), Some(15), "{:?}", out.status);
    }
    let out = sb.run(&cmd(
        "exec",
        &args(
            &url,
            &["--host", "db.example.com", "--", "no-such-command-xyz"],
        ),
    ));
    assert_eq!(out.status.code(), Some(127));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("redshift-creds: error: cannot run no-such-command-xyz"),
        "{err}"
    );
}

#[test]
fn a_cold_env_output_loads_the_aws_configuration_once() {
    // Endpoint lookup and credential in one run share one AWS session, so a
    // credential_process (which may prompt, or call an SSO broker) runs once.
    let Some(moto) = Moto::start() else { return };
    moto.create_cluster("examplecluster");
    let url = moto.url();
    let sb = Sandbox::new();
    let count = sb.path().join("credential-process-runs");
    let script = sb.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{{\"Version\":1,\"AccessKeyId\":\"AKIDPROCESS\",\"SecretAccessKey\":\"s\"}}'\n",
            count.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        sb.path().join("aws-config"),
        format!(
            "[profile proc]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    let a = cmd(
        "get",
        &args(
            &url,
            &[
                "--db-name",
                "dev",
                "--output",
                "env",
                "--profile",
                "proc",
                "-vv",
            ],
        ),
    );
    let out = sb
        .cmd(&a)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    for call in ["calling DescribeClusters", "calling GetClusterCredentials"] {
        assert!(log.contains(call), "{call}: {log}");
    }
    let runs = std::fs::read_to_string(&count).unwrap();
    assert_eq!(runs.lines().count(), 1, "credential_process ran {runs:?}");
}
