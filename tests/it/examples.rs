//! The examples and docs work when copied: the config (its schema line, through `get`), the missing-profile hint, the systemd unit, the demo, and the README (quick start first, links that resolve).

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, contract, require_tool, stderr};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("install/examples")
        .join(name)
}

#[test]
fn the_example_config_works_through_get_with_no_aws_profile_of_that_name() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let url = server.url();
    // A newcomer's machine: a default profile, and no profile named "prod".
    std::fs::write(
        sb.path().join("aws-credentials"),
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing-secret\n",
    )
    .unwrap();
    for name in ["prod", "prod-iam"] {
        let out = sb
            .cmd(&["get", name, "--endpoint-url", &url, "--cache", "none"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("REDSHIFT_CREDS_CONFIG", example("config.toml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(contract(&out)["Version"], 1);
    }
}

#[test]
fn the_example_config_names_its_schema_where_the_readme_copies_it() {
    let text = std::fs::read_to_string(example("config.toml")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("#:schema "))
        .expect("a #:schema line");
    // The README: copy the config and schemas/config.schema.json into
    // ~/.config/redshift-creds/.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("config.toml"), dir.path().join("config.toml")).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/config.schema.json");
    std::fs::copy(&schema, dir.path().join("config.schema.json")).unwrap();
    assert!(
        !line.contains("://"),
        "a path, not a URL that cannot be fetched: {line}"
    );
    let target = dir.path().join(line.trim());
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let config: toml::Value = toml::from_str(&text).unwrap();
    assert!(validator.is_valid(&serde_json::to_value(config).unwrap()));
}

#[test]
fn a_profile_that_does_not_exist_is_named_as_such() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("aws-config"),
        "[profile dev]\nregion = us-east-1\n",
    )
    .unwrap();
    let out = sb
        .cmd(&[
            "get",
            "--cluster-identifier",
            "c",
            "--db-user",
            "u",
            "--region",
            "us-east-1",
            "--profile",
            "prod",
            "--cache",
            "none",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the AWS profile \"prod\" is not defined in"),
        "{err}"
    );
    assert!(
        !err.contains("sign in again: aws sso login --profile prod"),
        "{err}"
    );
}

#[test]
fn the_example_systemd_unit_verifies() {
    let Some(analyze) = require_tool("systemd-analyze", "SYSTEMD_ANALYZE") else {
        return;
    };
    let sb = Sandbox::new();
    // The unit runs %h/.cargo/bin/redshift-creds, as install.sh puts it.
    let bin_dir = sb.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(crate::support::bin(), bin_dir.join("redshift-creds")).unwrap();
    let units = sb.path().join(".config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    let unit = units.join("redshift-creds-pgpass.service");
    std::fs::copy(example("redshift-creds-pgpass.service"), &unit).unwrap();
    let runtime = sb.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let verify = |unit: &Path| {
        sb.command(
            &analyze,
            &["verify", "--user", "--man=no", unit.to_str().unwrap()],
        )
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap()
    };
    let out = verify(&unit);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // The check is real: a unit with a typo fails it.
    let bad = units.join("bad.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&bad, text.replace("ExecStart=", "ExecStrat=")).unwrap();
    assert!(!verify(&bad).status.success());
}

#[test]
fn the_demo_echoes_each_command_and_shows_exec_without_the_password() {
    let Some(moto) = require_tool("moto_server", "MOTO_SERVER") else {
        return;
    };
    let venv = moto.parent().and_then(Path::parent).unwrap();
    let sb = Sandbox::new();
    let out = sb
        .command(example("../demo.sh"), &[])
        .env("MOTO_VENV", venv)
        .env("REDSHIFT_CREDS", crate::support::bin())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // Every numbered step shows its command first.
    for step in text.split("\n== ").skip(1) {
        assert!(
            step.lines().nth(1).is_some_and(|l| l.starts_with("$ ")),
            "{step}"
        );
    }
    let exec = text
        .lines()
        .find(|l| l.starts_with("PGUSER="))
        .expect("the exec step's line");
    assert_eq!(
        exec.split(' ')
            .filter(|w| !w.starts_with("PGHOST="))
            .collect::<Vec<_>>(),
        [
            "PGUSER=IAM:temp_creds_user",
            "PGDATABASE=exampledb",
            "PGPASSWORD",
            "is",
            "set"
        ]
    );
}

/// The README's text, and the path of the repository.
fn readme() -> (String, std::path::PathBuf) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    (
        std::fs::read_to_string(root.join("README.md")).unwrap(),
        root,
    )
}

#[test]
fn the_readme_opens_with_a_quick_start_and_names_the_test_command() {
    let (text, _) = readme();
    let sections: Vec<&str> = text.split("\n## ").collect();
    // The title and one paragraph, then the quick start.
    let intro = sections[0].trim().split("\n\n").count();
    assert_eq!(intro, 2, "a title and one paragraph: {:?}", sections[0]);
    assert!(sections[1].starts_with("Quick start\n"), "{}", sections[1]);
    let lines = sections[1].trim_end().lines().count();
    assert!(lines <= 20, "the quick start has {lines} lines");
    for step in [
        "install/install.sh",
        ".cargo/bin",
        "install/demo.sh",
        "doctor",
        "-- psql",
    ] {
        assert!(sections[1].contains(step), "the quick start lacks {step}");
    }
    let test = sections
        .iter()
        .find(|s| s.starts_with("Test\n"))
        .expect("a Test section");
    assert!(test.contains("tests/run.sh"), "{test}");
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let (_, root) = readme();
    let mut broken = Vec::new();
    for doc in [
        "README.md",
        "docs/guide.md",
        "docs/reference.md",
        "ARCHITECTURE.md",
    ] {
        let path = root.join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        for link in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let target = link.split('#').next().unwrap();
            if target.is_empty() || target.starts_with("http") {
                continue;
            }
            if !path.parent().unwrap().join(target).exists() {
                broken.push(format!("{doc}: {link}"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
