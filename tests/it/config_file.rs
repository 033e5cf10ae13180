//! The config file through the binary: named connections, its schema, and its errors.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, contract, prod_connection, stderr, stdout};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/config.schema.json"
    ))
    .unwrap();
    jsonschema::draft202012::new(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn toml_to_json(text: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

const EXAMPLE: &str = include_str!("../../install/examples/config.toml");

#[test]
fn the_example_config_is_valid_against_the_schema() {
    let v = schema();
    let example = toml_to_json(EXAMPLE);
    let errors: Vec<String> = v.iter_errors(&example).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The schema is not vacuous.
    for bad in [
        "[connections.prod]\ndb_usr = \"alice\"\n",
        "[connections.prod]\nduration_seconds = 60\n",
        "[connections.prod]\nsslmode = \"disable\"\n",
        "[connections.prod]\ncluster_identifier = \"Bad--\"\n",
        "[connections.prod]\ndb_user = \"PUBLIC\"\n",
        "[connections.prod]\ncache = \"sometimes\"\n",
        "[connection.prod]\n",
    ] {
        assert!(!v.is_valid(&toml_to_json(bad)), "{bad}");
    }
}

#[test]
fn the_binary_reads_the_example_config() {
    let sb = Sandbox::new();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("install/examples/config.toml");
    let out = sb
        .cmd(&["doctor"])
        .env("REDSHIFT_CREDS_CONFIG", &path)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("(3 connection(s): analytics, prod, prod-iam)"),
        "{text}\n{}",
        stderr(&out)
    );
}

/// Writes `[connections.prod]` for examplecluster in us-east-1 at `url`, with `keys` (one
/// `key = value` a line), as the sandbox's config.toml; its path.
fn prod_config(sb: &Sandbox, url: &str, keys: &str) -> std::path::PathBuf {
    let config = sb.path().join("config.toml");
    let text = format!(
        "[connections.prod]\ncluster_identifier = \"examplecluster\"\n\
         region = \"us-east-1\"\nendpoint_url = \"{url}\"\n{keys}"
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn a_named_connection_supplies_the_request() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let keys = "db_user = \"fileuser\"\ncache = \"file\"\nduration_seconds = 3600\n";
    let config = prod_config(&sb, &server.url(), keys);
    let out = sb.run_with_config(&config, &["get", "prod"]);
    let c = contract(&out);
    assert_eq!(c["DbUser"], "IAM:fileuser");
    // A flag beats the file.
    let out = sb.run_with_config(&config, &["get", "prod", "--db-user", "flaguser"]);
    assert_eq!(contract(&out)["DbUser"], "IAM:flaguser");
    assert_eq!(server.calls(), 2);
    // And the entries are listed under the connection's name.
    let out = sb.cmd(&["list"]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().next().unwrap().starts_with("CONNECTION"),
        "{text}"
    );
    assert!(
        text.contains("prod") && text.contains("IAM:fileuser") && text.contains("IAM:flaguser"),
        "{text}"
    );
}

#[test]
fn no_with_iam_turns_off_the_files_with_iam() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let config = prod_config(&sb, &server.url(), "with_iam = true\ncache = \"none\"\n");
    let get = |extra: &[&str]| {
        let mut args = vec!["get", "prod"];
        args.extend_from_slice(extra);
        sb.run_with_config(&config, &args)
    };
    // Under with_iam, a database user is refused...
    let out = get(&["--db-user", "alice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--db-user cannot be used here"),
        "{}",
        stderr(&out)
    );
    // ...and --no-with-iam turns it off for this run.
    let out = get(&["--no-with-iam", "--db-user", "alice"]);
    assert_eq!(contract(&out)["DbUser"], "IAM:alice");
    assert_eq!(server.operations(), ["GetClusterCredentials"]);
    // The last of --with-iam and --no-with-iam wins.
    let out = get(&["--no-with-iam", "--with-iam"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.operations(),
        ["GetClusterCredentials", "GetClusterCredentialsWithIAM"]
    );
}

#[test]
fn config_errors_name_the_file_line_column_and_key() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let config = sb.path().join("config.toml");
    let cases = [
        (
            "[connections.prod]\ncluster_identifier = \"c\"\ndb_usr = \"alice\"\n",
            "line 3, column 1: unknown field `db_usr`",
        ),
        (
            "[connections.prod]\nport = \"25439\"\n",
            "line 2, column 8: port must be a number, not a string: write 25439 without quotes",
        ),
        (
            "[connections.prod]\nauto_create = \"yes\"\n",
            "line 2, column 15: auto_create must be true or false, not a string",
        ),
        (
            "[connections.prod]\ndb_groups = \"readers\"\n",
            "db_groups must be a list, not a string: write [\"readers\"]",
        ),
        ("[connections.prod\n", "line 1, column"),
        (
            "[connections.prod]\ncluster_identifier = \"c\"\ndb_user = \"PUBLIC\"\n",
            "db_user of connection \"prod\"",
        ),
        ("[connections.dev]\n", "no connection \"prod\""),
    ];
    for (text, expect) in cases {
        std::fs::write(&config, text).unwrap();
        let out = sb.run_with_config(&config, &["get", "prod", "--endpoint-url", &server.url()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{text}: {err}");
        assert!(!err.contains("invalid type"), "serde's words: {err}");
        assert!(
            err.contains(config.to_str().unwrap()),
            "names the file: {err}"
        );
    }
    // A missing config file, for a name, says where it looked.
    let out = sb.run_with_config(&sb.path().join("none.toml"), &["get", "prod"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("none.toml does not exist"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.calls(), 0);
}

/// OpenSSH's StrictModes: a config file, or a directory above it inside the
/// home directory, that another user can write is refused (exit 2, one line
/// naming it and the rule, no AWS call): its `endpoint_url` would receive
/// our signed requests.
#[cfg(unix)]
#[test]
fn a_config_file_another_user_can_write_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let config_dir = sb.path().join(".config");
    let dir = config_dir.join("redshift-creds");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&config_dir, 0o755);
    chmod(&dir, 0o755);
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        prod_connection("fileuser", &server.url(), "cache = \"none\"\n"),
    )
    .unwrap();
    chmod(&path, 0o644);
    let get = || sb.cmd(&["get", "prod"]).output().unwrap();
    assert_eq!(contract(&get())["DbUser"], "IAM:fileuser");

    let refused = |what: &std::path::Path, rule: &str| {
        let out = get();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "redshift-creds: error: refusing the config file {}: {} {rule}",
                path.display(),
                what.display()
            )),
            "{err}"
        );
    };
    chmod(&path, 0o666);
    refused(&path, "can be written by other users (mode 666)");
    chmod(&path, 0o644);
    chmod(&dir, 0o777);
    refused(&dir, "can be written by other users (mode 777)");
    chmod(&dir, 0o755);
    chmod(&config_dir, 0o775);
    refused(&config_dir, "can be written by other users (mode 775)");
    chmod(&config_dir, 0o755);
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    refused(&path, "belongs to uid 65534");
    assert_eq!(server.calls(), 1, "no AWS call for a refused file");
}
