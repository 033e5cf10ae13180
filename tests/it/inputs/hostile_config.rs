//! Hostile values in every config field and the connection flags: exit 2, one clear message, no panic, no API call.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, stderr};

/// Renders a connection from (key, TOML value) pairs.
fn render(fields: &[(&str, String)]) -> String {
    let mut text = String::from("[connections.prod]\n");
    for (k, v) in fields {
        text.push_str(&format!("{k} = {v}\n"));
    }
    text
}

fn toml_str(s: &str) -> String {
    // A TOML basic string with everything escaped.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every (key, TOML value) pair to try: hostile strings and numbers in each field.
fn hostile_cases() -> Vec<(String, String)> {
    let long = "x".repeat(10_000);
    let strings = [
        "",
        &long,
        "ünïcödé",
        "a\u{0}b",
        "a\nb",
        "$(touch /tmp/pwned)",
        "; rm -rf ~ &",
        "-rf",
    ];
    let string_keys = [
        "cluster_identifier",
        "workgroup",
        "host",
        "db_user",
        "db_name",
        "custom_domain_name",
        "region",
        "aws_profile",
        "endpoint_url",
        "cache",
        "sslmode",
        "sslrootcert",
    ];
    let numbers = [
        "-1",
        "0",
        "99999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "\"12\"",
        "1.5",
    ];
    let number_keys = ["port", "duration_seconds", "refresh_margin"];
    let mut cases: Vec<(String, String)> = Vec::new();
    for key in string_keys {
        for s in strings {
            cases.push((key.to_string(), toml_str(s)));
        }
        cases.push((key.to_string(), "42".to_string()));
    }
    for key in number_keys {
        for n in numbers {
            cases.push((key.to_string(), n.to_string()));
        }
    }
    for g in strings {
        cases.push(("db_groups".to_string(), format!("[{}]", toml_str(g))));
    }
    cases.push(("db_groups".to_string(), "\"notalist\"".to_string()));
    for key in ["auto_create", "with_iam"] {
        cases.push((key.to_string(), "\"yes\"".to_string()));
    }
    cases
}

#[test]
fn every_config_field_refuses_hostile_values() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let config = sb.path().join("config.toml");
    let cases = hostile_cases();
    let mut failures = Vec::new();
    let mut accepted = Vec::new();
    for (key, value) in &cases {
        let mut fields: Vec<(&str, String)> = vec![
            ("cluster_identifier", toml_str("examplecluster")),
            ("db_user", toml_str("alice")),
            ("region", toml_str("us-east-1")),
            ("endpoint_url", toml_str(&url)),
            ("cache", toml_str("file")),
            ("host", toml_str("db.example.com")),
        ];
        if key == "workgroup" {
            fields.retain(|(k, _)| *k != "cluster_identifier" && *k != "db_user");
        }
        fields.retain(|(k, _)| k != key);
        fields.push((key, value.clone()));
        std::fs::write(&config, render(&fields)).unwrap();
        // env output needs the endpoint, so host, port and TLS are checked too.
        let out = sb
            .cmd(&["get", "prod", "--output", "env"])
            .env("REDSHIFT_CREDS_CONFIG", &config)
            .output()
            .unwrap();
        let err = stderr(&out);
        if out.status.code() == Some(0) {
            accepted.push(format!("{key} = {value}"));
            continue;
        }
        let ok = out.status.code() == Some(2)
            && out.stdout.is_empty()
            && err.lines().count() == 1
            && err.starts_with("redshift-creds: error: ")
            && !err.contains("panicked")
            && err.len() < 800;
        if !ok {
            failures.push(format!(
                "{key} = {value}: exit {:?}: {err:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The only value in the table that is legitimate: a refresh margin of 0.
    assert_eq!(accepted, ["refresh_margin = 0"], "accepted");
    assert_eq!(
        server.calls(),
        accepted.len(),
        "no refused value reached the API ({} cases)",
        cases.len()
    );
}

#[test]
fn connection_flags_refuse_hostile_values() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let long = "h".repeat(300);
    let cases: Vec<(&str, &str)> = vec![
        ("--host", ""),
        ("--host", &long),
        ("--host", "a b"),
        ("--host", "höst.example.com"),
        ("--host", "$(id).example.com"),
        ("--host", "db.example.com\n"),
        ("--port", "0"),
        ("--port", "-1"),
        ("--port", "65536"),
        ("--port", "99999999999999999999"),
        ("--port", "x"),
        ("--sslmode", ""),
        ("--sslmode", "disable"),
        ("--sslmode", "Verify-Full"),
        ("--sslrootcert", ""),
        ("--sslrootcert", "/nonexistent"),
        ("--workgroup", "AB"),
        ("--workgroup", "$(id)"),
        ("--custom-domain-name", ""),
    ];
    let mut failures = Vec::new();
    for (flag, value) in &cases {
        let mut a = crate::support::get_args(&url, &["--output", "env", flag, value]);
        if *flag == "--workgroup" {
            a.drain(1..5);
        }
        let out = sb.run(&a);
        let err = stderr(&out);
        let ok = out.status.code() == Some(2)
            && out.stdout.is_empty()
            && err.lines().count() == 1
            && err.contains(flag.trim_start_matches('-'))
            && !err.contains("panicked");
        if !ok {
            failures.push(format!(
                "{flag} {value:?}: exit {:?}: {err:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(server.calls(), 0);
    assert_eq!(server.describe_calls(), 0);
}
