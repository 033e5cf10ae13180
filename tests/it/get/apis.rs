//! Each credential API against a counting server that speaks its protocol.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, base_args as base, contract, stderr, stdout};
use std::process::Output;

#[test]
fn get_cluster_credentials_with_iam_uses_the_iam_identity() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut a = vec![
        "get",
        "--cluster-identifier",
        "examplecluster",
        "--with-iam",
        "--db-name",
        "dev",
    ];
    a.extend(base(&url));
    let c = contract(&sb.run(&a));
    assert_eq!(c["DbUser"], "IAMR:tester@role");
    assert_eq!(c["DbPassword"], "iam-pw-1");
    assert_eq!(server.operations(), ["GetClusterCredentialsWithIAM"]);
    // Cached like every other mode.
    assert_eq!(contract(&sb.run(&a))["DbPassword"], "iam-pw-1");
    assert_eq!(server.calls(), 1);
}

#[test]
fn serverless_get_credentials_speaks_json_and_finds_the_workgroup_endpoint() {
    let server = CountingServer::describing(
        "analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com",
        5439,
    );
    let url = server.url();
    let sb = Sandbox::new();
    let mut a = vec![
        "get",
        "--workgroup",
        "analytics",
        "--db-name",
        "dev",
        "--duration-seconds",
        "1800",
    ];
    a.extend(base(&url));
    let c = contract(&sb.run(&a));
    assert_eq!(c["DbUser"], "IAMR:tester@role");
    assert_eq!(c["DbPassword"], "serverless-pw-1");
    let exp = humantime::parse_rfc3339(c["Expiration"].as_str().unwrap()).unwrap();
    let left = exp
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((1790..=1800).contains(&left), "{left}");
    a.extend(["--output", "env"]);
    let out = sb.run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    let env = stdout(&out);
    assert!(
        env.contains(
            "export PGHOST='analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com'"
        ),
        "{env}"
    );
    assert!(env.contains("export PGPASSWORD='serverless-pw-1'"), "{env}");
    assert_eq!(
        server.operations(),
        [
            "RedshiftServerless.GetCredentials",
            "RedshiftServerless.GetWorkgroup"
        ]
    );
}

/// `get --host HOST --output env` (then `extra`) at a fresh fake AWS: the server, and
/// the run's output, checked to have succeeded and to export `PGHOST` as `host`.
fn get_by_host(host: &str, extra: &[&str]) -> (CountingServer, Output) {
    let server = CountingServer::start();
    let url = server.url();
    let mut a = vec!["get", "--host", host, "--endpoint-url", &url];
    a.extend(["--cache", "file", "--output", "env"]);
    a.extend_from_slice(extra);
    let out = Sandbox::new().run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("export PGHOST='{host}'")));
    (server, out)
}

#[test]
fn a_redshift_host_name_supplies_cluster_and_region() {
    let host = "examplecluster.abc123xyz789.eu-west-1.redshift.amazonaws.com";
    let (server, _) = get_by_host(host, &["--db-user", "alice"]);
    assert_eq!(server.operations(), ["GetClusterCredentials"]);
    assert_eq!(server.calls(), 1);
    assert_eq!(server.describe_calls(), 0);
}

#[test]
fn a_serverless_host_name_supplies_workgroup_and_region() {
    let host = "analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com";
    let (server, _) = get_by_host(host, &[]);
    assert_eq!(server.operations(), ["RedshiftServerless.GetCredentials"]);
}
