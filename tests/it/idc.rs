//! Identity Center tokens (`--identity-center`, `identity_center = true`): GetIdentityCenterAuthToken for a cluster or workgroup, the token contract, the cache they share with passwords, and the commands that refuse a token.

use crate::support::counting::{Behaviour, CountingServer};
use crate::support::{Sandbox, around_base, base_args, contract, stderr, stdout};

/// `get --identity-center` for examplecluster at `url`, cached in files, then `extra`.
fn cluster<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let head = [
        "get",
        "--identity-center",
        "--cluster-identifier",
        "examplecluster",
    ];
    around_base(&head, url, extra)
}

/// `get --identity-center` for the analytics workgroup at `url`, then `extra`.
fn workgroup<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    around_base(
        &["get", "--identity-center", "--workgroup", "analytics"],
        url,
        extra,
    )
}

fn token(out: &std::process::Output) -> String {
    let c = contract(out);
    assert_eq!(c["TokenType"], "SUBJECT_TOKEN", "{c}");
    c["Token"].as_str().unwrap().to_string()
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/token.schema.json"
    ))
    .unwrap();
    jsonschema::draft202012::new(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn eight_concurrent_gets_make_one_call_and_a_later_one_none() {
    let server = CountingServer::start();
    server.set_delay(std::time::Duration::from_millis(300));
    let url = server.url();
    let sb = Sandbox::new();
    let outputs = sb.run_many(&cluster(&url, &[]), 8);
    let tokens: Vec<String> = outputs.iter().map(token).collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_eq!(server.idc_calls(), ["cluster:examplecluster"]);
    assert_eq!(server.calls(), 0, "no password was asked for");

    // A later process is answered from the cache by the front alone: no
    // helper beside it, no call.
    let bare = tempfile::tempdir().unwrap();
    let lone = bare.path().join("redshift-creds");
    std::fs::copy(crate::support::bin(), &lone).unwrap();
    let later = sb.command(&lone, &cluster(&url, &[])).output().unwrap();
    assert_eq!(token(&later), tokens[0]);
    assert!(stderr(&later).is_empty(), "{}", stderr(&later));
    assert_eq!(server.idc_calls().len(), 1, "cached");
}

#[test]
fn a_token_and_a_password_for_one_cluster_are_cached_apart() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut with_iam = vec![
        "get",
        "--with-iam",
        "--cluster-identifier",
        "examplecluster",
    ];
    with_iam.extend(base_args(&url));
    let pw = contract(&sb.run(&with_iam));
    let t = token(&sb.run(&cluster(&url, &[])));
    assert_eq!(server.idc_calls().len(), 1, "the password did not stand in");
    assert_ne!(pw["DbPassword"].as_str().unwrap(), t);
    assert_eq!(
        contract(&sb.run(&with_iam))["DbPassword"],
        pw["DbPassword"],
        "nor the token for the password"
    );
    assert_eq!(sb.entries().len(), 2);
}

#[test]
fn serverless_asks_for_the_workgroup() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&workgroup(&url, &[]));
    assert!(token(&out).starts_with("idc-token-1"), "{}", stdout(&out));
    assert_eq!(server.idc_calls(), ["workgroup:analytics"]);
    assert_eq!(
        server.operations(),
        ["RedshiftServerless.GetIdentityCenterAuthToken"]
    );
}

#[test]
fn access_denied_names_the_api_and_the_permission() {
    let server = CountingServer::start();
    server.set_idc_behaviour(Behaviour::AccessDenied);
    let url = server.url();
    for (args, permission) in [
        (cluster(&url, &[]), "redshift:GetIdentityCenterAuthToken"),
        (
            workgroup(&url, &[]),
            "redshift-serverless:GetIdentityCenterAuthToken",
        ),
    ] {
        let out = Sandbox::new().run(&args);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("GetIdentityCenterAuthToken failed")
                && err.contains(&format!("the IAM principal needs {permission}"))
                && err.contains("identity-enhanced"),
            "{err}"
        );
    }
}

#[test]
fn a_cluster_without_identity_center_says_so() {
    let server = CountingServer::start();
    server.set_idc_behaviour(Behaviour::UnsupportedOperation);
    let out = Sandbox::new().run(&cluster(&server.url(), &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the cluster \"examplecluster\" does not offer Identity Center tokens")
            && err.contains("UnsupportedOperation")
            && err.contains("drop --identity-center"),
        "{err}"
    );
}

#[test]
fn exec_env_and_pgpass_refuse_a_token_before_any_call() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut runs: Vec<Vec<&str>> = vec![cluster(&url, &["--output", "env"])];
    for command in ["exec", "pgpass"] {
        let mut a = cluster(&url, &["--host", "h.example.com"]);
        a[0] = command;
        if command == "exec" {
            a.extend(["--", "true"]);
        }
        runs.push(a);
    }
    for args in &runs {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("a token is not a password; use `redshift-creds proxy`")
                && err.contains("--identity-center"),
            "{err}"
        );
    }
    assert!(server.operations().is_empty(), "{:?}", server.operations());
    assert!(!sb.path().join(".pgpass").exists());
}

#[test]
fn output_password_is_the_token_alone() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&cluster(&url, &["--output", "password"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "idc-token-1.QUJD/+=\n");
}

#[test]
fn the_json_validates_against_the_token_schema() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let value = contract(&sb.run(&cluster(&server.url(), &[])));
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {value}");
    // And the schema refuses what the contract must not be.
    let mut wrong = value.clone();
    wrong["TokenType"] = "BEARER".into();
    assert!(!schema().is_valid(&wrong));
}

#[test]
fn the_config_key_asks_for_a_token() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let config = sb.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[connections.idc]\ncluster_identifier = \"examplecluster\"\nidentity_center = true\n\
             region = \"us-east-1\"\nendpoint_url = \"{url}\"\ncache = \"file\"\n"
        ),
    )
    .unwrap();
    assert!(token(&sb.run_with_config(&config, &["get", "idc"])).starts_with("idc-token-1"));
    let out = sb.run_with_config(&config, &["exec", "idc", "--host", "h", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("identity_center of connection \"idc\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_shows_the_token_and_clear_removes_it() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let t = token(&sb.run(&cluster(&url, &[])));
    let text = stdout(&sb.run(&["list"]));
    let row = text
        .lines()
        .find(|l| l.starts_with("examplecluster"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("token")
            && row.contains("SUBJECT_TOKEN")
            && (row.contains("59m") || row.contains("1h00m")),
        "{text}"
    );
    assert!(!text.contains(&t), "no token in list: {text}");

    let out = sb.run(&["clear", "examplecluster"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(sb.entries().is_empty(), "{:?}", sb.cache_files());
    assert_eq!(stdout(&sb.run(&["list"])), "no cached entries\n");
    token(&sb.run(&cluster(&url, &[])));
    assert_eq!(server.idc_calls().len(), 2, "cleared, so fetched again");
}
