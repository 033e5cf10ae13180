//! `get` against a real AWS-protocol peer: moto_server on loopback.

use crate::support::moto::Moto;
use crate::support::{Sandbox, contract, password, stderr, stdout};

const CLUSTER: &str = "examplecluster";

fn get_args<'a>(moto: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "get",
        "--cluster-identifier",
        CLUSTER,
        "--db-user",
        "temp_creds_user",
        "--region",
        "us-east-1",
        "--endpoint-url",
        moto,
        "--cache",
        "file",
    ];
    v.extend_from_slice(extra);
    v
}

fn moto_with_cluster() -> Option<Moto> {
    let moto = Moto::start()?;
    moto.create_cluster(CLUSTER);
    Some(moto)
}

#[test]
fn first_call_reaches_the_api_and_the_second_is_a_cache_hit() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let before = moto.requests();

    let first = sb.run(&get_args(
        &url,
        &["--db-name", "exampledb", "--duration-seconds", "3600"],
    ));
    let c = contract(&first);
    assert_eq!(c["Version"], 1);
    assert_eq!(c["DbUser"], "IAM:temp_creds_user");
    assert_eq!(moto.requests(), before + 1, "the first call reaches moto");
    assert!(
        stderr(&first).is_empty(),
        "no noise on stderr: {}",
        stderr(&first)
    );

    let second = sb.run(&get_args(
        &url,
        &["--db-name", "exampledb", "--duration-seconds", "3600"],
    ));
    assert_eq!(password(&second), c["DbPassword"].as_str().unwrap());
    assert_eq!(
        moto.requests(),
        before + 1,
        "the second call never reaches moto"
    );

    // Still a hit with moto gone: nothing reaches the network on a hit.
    drop(moto);
    let third = sb.run(&get_args(
        &url,
        &["--db-name", "exampledb", "--duration-seconds", "3600"],
    ));
    assert_eq!(password(&third), c["DbPassword"].as_str().unwrap());
}

#[test]
fn the_output_matches_the_schema() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/credential.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let out = sb.run(&get_args(
        &url,
        &["--auto-create", "--db-groups", "example_group"],
    ));
    let value = contract(&out);
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {value}");
    assert_eq!(
        value["DbUser"], "IAMA:temp_creds_user",
        "auto-create reached the API"
    );

    // And the schema is not vacuous: a wrong object fails it.
    let mut wrong = value.clone();
    wrong["Version"] = 2.into();
    assert!(!validator.is_valid(&wrong));
    let mut wrong = value;
    wrong["Expiration"] = "tomorrow".into();
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn password_output_prints_the_password_alone() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let json = password(&sb.run(&get_args(&url, &[])));
    let out = sb.run(&get_args(&url, &["--output", "password"]));
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("{json}\n"));
}

#[test]
fn near_expiry_the_entry_is_refreshed() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let before = moto.requests();
    // moto issues 900 s passwords; a margin of 899 s makes the entry near
    // expiry a second after it is issued; the refresh in the foreground.
    let args = get_args(&url, &["--refresh-margin", "899", "--no-refresh-ahead"]);
    let first = password(&sb.run(&args));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = password(&sb.run(&args));
    assert_ne!(first, second, "a new password was fetched");
    assert_eq!(moto.requests(), before + 2);
    // The refreshed entry replaced the old one: one entry, and a hit now.
    assert_eq!(sb.entries().len(), 1);
    let third = password(&sb.run(&get_args(&url, &[])));
    assert_eq!(third, second);
    assert_eq!(moto.requests(), before + 2);
}

#[test]
fn different_parameters_make_different_entries() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let variants: [&[&str]; 4] = [
        &[],
        &["--db-name", "dev"],
        &["--duration-seconds", "1800"],
        &["--db-groups", "b", "a"],
    ];
    let mut passwords = Vec::new();
    for extra in variants {
        passwords.push(password(&sb.run(&get_args(&url, extra))));
    }
    passwords.sort();
    passwords.dedup();
    assert_eq!(passwords.len(), 4, "each request got its own password");
    assert_eq!(sb.entries().len(), 4, "and its own entry");
    // Group order and commas do not change the identity.
    let before = moto.requests();
    sb.run(&get_args(&url, &["--db-groups", "a,b"]));
    assert_eq!(moto.requests(), before, "same groups, other order: a hit");
}

#[test]
fn cluster_not_found_is_a_clean_error() {
    let Some(moto) = moto_with_cluster() else {
        return;
    };
    let url = moto.url();
    let sb = Sandbox::new();
    let mut args = get_args(&url, &[]);
    args[2] = "no-such-cluster";
    let out = sb.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "redshift-creds: error: GetClusterCredentials failed for cluster \"no-such-cluster\", \
             user \"temp_creds_user\" in us-east-1: the cluster was not found"
        ),
        "{err}"
    );
    assert!(
        err.contains("check --cluster-identifier and --region"),
        "{err}"
    );
    assert!(sb.entries().is_empty(), "nothing cached");
}

/// The HTTPS client (rustls on ring) against moto serving TLS under a test
/// CA: trusted through SSL_CERT_FILE the call completes (moto answers that
/// the cluster does not exist: a parsed AWS reply), untrusted it fails in the
/// handshake and says so.
#[cfg(unix)]
#[test]
fn https_endpoints_are_verified_against_the_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let Some((moto, ca)) = Moto::start_tls_under_test_ca(dir.path()) else {
        return;
    };
    let url = format!("https://localhost:{}", moto.port);
    let sb = Sandbox::new();
    let args = ["--api-timeout", "10"];

    let trusted = sb
        .cmd(&get_args(&url, &args))
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert_eq!(trusted.status.code(), Some(1), "{}", stderr(&trusted));
    let err = stderr(&trusted);
    assert!(
        err.contains("cluster was not found"),
        "moto's own answer came back over TLS: {err}"
    );

    let untrusted = sb.run(&get_args(&url, &args));
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(untrusted.stdout.is_empty());
    let err = stderr(&untrusted).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("tls"),
        "a certificate failure, said as one: {err}"
    );
    assert!(!err.contains("cluster was not found"), "{err}");
}
