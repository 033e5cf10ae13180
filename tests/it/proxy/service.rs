//! The proxy as a service, from the command line's side: `--check`, the service flags and
//! their config keys, `--structured-logs`, and the Kubernetes examples and Containerfile
//! (their YAML parses, their arguments pass `--check`, their probes name the endpoints).
//! What the HTTP endpoints answer is tested with the engine.

use super::{PASSWORD, Proxy, Raw, Rig, WHO, WHO_ANSWER};
use crate::support::counting::CountingServer;
use crate::support::{Sandbox, cred_args, require_tool, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `proxy` with the credential flags at `url`, then `extra`.
fn proxy_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["proxy"];
    v.extend(cred_args(url, extra));
    v
}

#[test]
fn check_says_what_would_be_served_binds_nothing_and_asks_aws_nothing() {
    let aws = CountingServer::start();
    let sb = Sandbox::new();
    let url = aws.url();
    // Both ports are taken: a proxy that bound them would fail.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (listen, http) = (
        taken.local_addr().unwrap().to_string(),
        http.local_addr().unwrap().to_string(),
    );
    let o = sb.run(&proxy_args(
        &url,
        &[
            "--listen",
            &listen,
            "--http",
            &http,
            "--max-connections",
            "7",
            "--shutdown-timeout",
            "12",
            "--min-shutdown-delay",
            "3",
            "--allow-uid",
            "4242",
            "--check",
        ],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "serve examplecluster on {listen} to the endpoint of examplecluster \
             (looked up at start) with sslmode verify-full"
        )
    );
    for want in [
        format!("http: {http}"),
        "max_connections: 7".into(),
        "shutdown_timeout: 12".into(),
        "min_shutdown_delay: 3".into(),
        "client_tls: false".into(),
        "structured_logs: false".into(),
    ] {
        assert!(lines.contains(&want.as_str()), "{want} in {out}");
    }
    let uids = lines
        .iter()
        .find_map(|l| l.strip_prefix("allow_uid: "))
        .unwrap();
    assert!(uids.split(' ').any(|u| u == "4242"), "{out}");
    assert_eq!(aws.calls() + aws.describe_calls(), 0, "no AWS call");

    // The defaults, with the upstream given.
    let o = sb.run(&proxy_args(&url, &["--host", "db.internal", "--check"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "serve examplecluster on 127.0.0.1:5439 to db.internal:5439 with sslmode verify-full\n\
             http: none\nmax_connections: unlimited\nshutdown_timeout: 30\nmin_shutdown_delay: 0\n"
        ),
        "{out}"
    );
}

#[test]
fn check_refuses_a_bad_service_value_in_one_line_with_exit_2() {
    let aws = CountingServer::start();
    let sb = Sandbox::new();
    let url = aws.url();
    for (flag, value, rule) in [
        ("--http", "localhost:9090", "expected IP:PORT"),
        ("--http", "0.0.0.0", "expected IP:PORT"),
        ("--http", "", "expected IP:PORT"),
        ("--max-connections", "0", "must be 1 to 1000000"),
        ("--max-connections", "-3", "must be 1 to 1000000"),
        ("--max-connections", "1000001", "must be 1 to 1000000"),
        ("--min-shutdown-delay", "-1", "must be 0 to 86400 seconds"),
        (
            "--min-shutdown-delay",
            "86401",
            "must be 0 to 86400 seconds",
        ),
        ("--shutdown-timeout", "-1", "must be 0 to 86400 seconds"),
    ] {
        let o = sb.run(&proxy_args(&url, &[flag, value, "--check"]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(stdout(&o).is_empty(), "{flag} {value}: {}", stdout(&o));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "redshift-creds: error: invalid {flag} \"{value}\": {rule}"
            )),
            "{err}"
        );
    }
    // A root certificate file with no certificate in it.
    let pem = sb.path().join("roots.pem");
    std::fs::write(&pem, "not a certificate\n").unwrap();
    let o = sb.run(&proxy_args(
        &url,
        &["--sslrootcert", pem.to_str().unwrap(), "--check"],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no certificates"), "{}", stderr(&o));
    // Not a number at all: clap's usage error, one line too.
    let o = sb.run(&proxy_args(&url, &["--max-connections", "many", "--check"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-connections"), "{}", stderr(&o));
    assert_eq!(aws.calls() + aws.describe_calls(), 0);
}

/// A config file in the sandbox; returns its path.
fn write_config(sb: &Sandbox, text: &str) -> PathBuf {
    let path = sb.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `redshift-creds ARGS` with the config file at `config`.
fn run_with(sb: &Sandbox, config: &Path, args: &[&str]) -> Output {
    sb.cmd(args)
        .env("REDSHIFT_CREDS_CONFIG", config)
        .output()
        .unwrap()
}

#[test]
fn the_config_keys_work_like_the_flags() {
    let aws = CountingServer::start();
    let sb = Sandbox::new();
    let url = aws.url();
    let connection = |name: &str, port: u16, keys: &str| {
        format!(
            "[connections.{name}]\ncluster_identifier = \"examplecluster\"\ndb_user = \"alice\"\n\
             region = \"us-east-1\"\nendpoint_url = \"{url}\"\nhost = \"db.internal\"\n\
             listen = [\"127.0.0.1:{port}\"]\n{keys}"
        )
    };
    let service = "http = \"0.0.0.0:9090\"\nmax_connections = 5\nshutdown_timeout = 40\n\
                   min_shutdown_delay = 2\nallow_uid = [4242, 4343]\n";
    // A connection's own keys; the top level's for `--all` (and under a connection's).
    let text = format!(
        "structured_logs = false\n{}\n{}\n{}",
        service.replace("9090", "9191").replace("= 5", "= 6"),
        connection("a", 15439, service),
        connection("b", 15440, ""),
    );
    let config = write_config(&sb, &text);
    let flags = [
        "--http",
        "0.0.0.0:9090",
        "--max-connections",
        "5",
        "--shutdown-timeout",
        "40",
        "--min-shutdown-delay",
        "2",
        "--allow-uid",
        "4242",
        "--allow-uid",
        "4343",
    ];
    let check = |args: &[&str]| {
        let mut all = vec!["proxy"];
        all.extend(args);
        all.push("--check");
        let o = run_with(&sb, &config, &all);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let by_keys = check(&["a"]);
    let mut with_flags = vec!["a"];
    with_flags.extend(flags);
    assert_eq!(by_keys, check(&with_flags));
    assert!(
        by_keys.contains("http: 0.0.0.0:9090\nmax_connections: 5\n"),
        "{by_keys}"
    );
    assert!(
        by_keys.contains("allow_uid: ") && by_keys.contains(" 4343"),
        "{by_keys}"
    );
    // `b` has no keys of its own: the top level's.
    assert!(check(&["b"]).contains("http: 0.0.0.0:9191\nmax_connections: 6\n"));
    // `--all` reads the top level (and says that `a`'s own keys are not used).
    let o = run_with(&sb, &config, &["proxy", "--all", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("http: 0.0.0.0:9191\n"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("connection \"a\"'s own service keys are not used"));
    // A flag beats the key.
    assert!(check(&["a", "--max-connections", "9"]).contains("max_connections: 9\n"));

    // A bad key is exit 2 naming the key and the file; structured_logs = true makes
    // even that line JSON.
    let config = write_config(
        &sb,
        &format!(
            "structured_logs = true\n{}",
            connection("a", 15439, "max_connections = 0\n")
        ),
    );
    let o = run_with(&sb, &config, &["proxy", "a", "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let line: Value = serde_json::from_str(stderr(&o).trim()).expect("one JSON line");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["message"],
        format!(
            "invalid max_connections in {} \"0\": must be 1 to 1000000",
            config.display()
        )
    );
    let config = write_config(&sb, &connection("a", 15439, "http = \"everywhere\"\n"));
    let o = run_with(&sb, &config, &["proxy", "a", "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid http in "), "{}", stderr(&o));
    assert_eq!(aws.calls() + aws.describe_calls(), 0);
}

/// Starts a `--structured-logs` proxy and waits for its `listening on` line (as JSON).
fn spawn_structured(cmd: Command) -> Proxy {
    Proxy::spawn_with(cmd, |text| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                let m = v["message"].as_str()?.strip_prefix("listening on ")?;
                m.split_once(" for ")
                    .map(|(a, n)| (a.to_string(), n.to_string()))
            })
            .collect()
    })
}

#[test]
fn structured_logs_are_one_json_object_a_line_with_the_session_fields_and_no_password() {
    let Some(rig) = Rig::start() else { return };
    // At trace level, with a session token in the AWS credentials.
    const TOKEN: &str = "session-token-never-logged";
    let args = rig.args(&["--listen", "127.0.0.1:0", "--structured-logs", "-vv"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = rig.sb.cmd(&args);
    cmd.env("AWS_SESSION_TOKEN", TOKEN);
    let mut proxy = spawn_structured(cmd);
    let addr = proxy.tcp();
    let mut c = Raw::connect(addr, "someone", "postgres").unwrap();
    assert_eq!(c.query(WHO).unwrap(), [WHO_ANSWER]);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.stderr().contains("session closed") {
        assert!(Instant::now() < deadline, "{}", proxy.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.terminate();
    assert_eq!(proxy.wait_exit(Duration::from_secs(20)), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    let text = proxy.stderr();
    for secret in [PASSWORD, TOKEN, "testing-secret-key-value"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    let mut session = None;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nall: {text}"));
        for key in ["timestamp", "level", "message"] {
            assert!(v[key].is_string(), "{key} in {line}");
        }
        humantime::parse_rfc3339(v["timestamp"].as_str().unwrap()).expect(line);
        if v["message"] == "session closed" {
            session = Some(v);
        }
    }
    let s = session.unwrap_or_else(|| panic!("no session line: {text}"));
    assert_eq!(s["level"], "INFO");
    assert_eq!(s["target"], "examplecluster", "{s}");
    assert!(
        s["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{s}"
    );
    assert_eq!(s["uid"], u64::from(unsafe { libc::geteuid() }), "{s}");
    for number in ["duration_ms", "bytes_from_client", "bytes_to_client"] {
        assert!(s[number].is_u64(), "{number} in {s}");
    }
    assert!(s["bytes_to_client"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        s["user"],
        super::ROLE,
        "the upstream user, not the client's name"
    );
}

/// The Kubernetes examples, parsed to JSON by PyYAML (which moto's venv has), in order.
fn kubernetes_examples() -> Option<Vec<(String, Value)>> {
    let moto = require_tool("moto_server", "MOTO_SERVER")?;
    let python = moto.with_file_name("python3");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("install/examples/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let o = Command::new(&python)
            .args([
                "-c",
                "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
            ])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", f.display(), stderr(&o));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for d in serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap() {
            docs.push((name.clone(), d));
        }
    }
    Some(docs)
}

#[test]
fn the_kubernetes_examples_parse_check_and_probe_the_right_paths() {
    let Some(docs) = kubernetes_examples() else {
        return;
    };
    let kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ServiceAccount", "ConfigMap", "Deployment", "Job"]);
    let sb = Sandbox::new();
    let toml_text = docs[1].1["data"]["config.toml"].as_str().unwrap();
    let config = write_config(&sb, toml_text);
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/config.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    let as_json = serde_json::to_value(toml::from_str::<toml::Value>(toml_text).unwrap()).unwrap();
    assert!(
        jsonschema::draft202012::new(&schema)
            .unwrap()
            .is_valid(&as_json),
        "the ConfigMap's config.toml is valid against the schema"
    );
    let account = docs[0].1["metadata"]["name"].as_str().unwrap();
    for (file, doc) in &docs[2..] {
        let pod = &doc["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], account, "{file}");
        let containers = |key: &str| pod[key].as_array().cloned().unwrap_or_default();
        let all: Vec<Value> = [containers("initContainers"), containers("containers")].concat();
        let (proxies, apps): (Vec<&Value>, Vec<&Value>) = all
            .iter()
            .partition(|c| c["args"].get(0).is_some_and(|a| a == "proxy"));
        let (proxy, app) = (proxies[0], apps[0]);
        if *file == "deployment.yaml" {
            assert_eq!(proxy["restartPolicy"], "Always", "a native sidecar");
            assert!(containers("initContainers").contains(proxy));
        }
        let args: Vec<&str> = proxy["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let value_of = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
        assert_eq!(value_of("--listen"), "127.0.0.1:5439", "{file}");
        assert_eq!(value_of("--http"), "0.0.0.0:9090", "{file}");
        assert_eq!(
            value_of("--allow-uid"),
            app["securityContext"]["runAsUser"].to_string(),
            "{file}: the app's uid may connect"
        );
        // The container's arguments, with the ConfigMap's file, pass --check.
        let mut check = args.clone();
        check.push("--check");
        let o = run_with(&sb, &config, &check);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("serve prod on 127.0.0.1:5439 to the endpoint of prod"),
            "{}",
            stdout(&o)
        );
        assert!(
            stdout(&o).contains("http: 0.0.0.0:9090\n"),
            "{}",
            stdout(&o)
        );
        // The probes ask the --http port for /startup and /liveness.
        let port = &proxy["ports"][0];
        assert_eq!(port["containerPort"], 9090, "{file}");
        for (probe, path) in [("startupProbe", "/startup"), ("livenessProbe", "/liveness")] {
            let get = &proxy[probe]["httpGet"];
            assert_eq!(get["path"], path, "{file} {probe}");
            assert_eq!(get["port"], port["name"], "{file} {probe}");
        }
        assert!(
            !app["env"].to_string().to_lowercase().contains("password"),
            "no password in the app's environment"
        );
        if *file == "job.yaml" {
            let script = app["args"][0].as_str().unwrap();
            assert!(
                script.contains("trap 'http POST /quitquitquit' EXIT"),
                "{script}"
            );
            assert!(script.contains("until http GET /startup"), "{script}");
            let o = Command::new("bash")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
}

#[test]
fn the_containerfile_builds_both_binaries_with_the_workspace_rust_and_runs_unprivileged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Containerfile")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let rust = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        text.contains(&format!("ARG RUST_VERSION={rust}\n")),
        "rust {rust}"
    );
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{}", froms[0]);
    assert!(
        froms[1].contains("debian:") && froms[1].ends_with("-slim"),
        "{}",
        froms[1]
    );
    assert!(
        text.contains("cargo build --release --locked -p redshift-creds -p redshift-creds-aws"),
        "both binaries, from Cargo.lock"
    );
    // Side by side, so that the front finds redshift-creds-aws beside it.
    assert!(
        text.contains(
            "COPY --from=build /out/redshift-creds /out/redshift-creds-aws /usr/local/bin/"
        )
    );
    let user = text
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .unwrap();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert_ne!(uid, 0);
    // The sidecar examples run it as that uid.
    let deployment =
        std::fs::read_to_string(root.join("install/examples/kubernetes/deployment.yaml")).unwrap();
    assert!(deployment.contains(&format!("runAsUser: {uid}")));
    // The build context leaves out the build output.
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target"));
}

#[test]
fn the_systemd_unit_checks_the_config_before_it_starts_the_proxy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("install/examples/redshift-creds-proxy.service"))
        .unwrap();
    let command = |key: &str| -> Vec<String> {
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key}"));
        let mut words = line.split(' ').map(str::to_owned);
        assert_eq!(words.next().unwrap(), "%h/.local/bin/redshift-creds");
        words.collect()
    };
    let (pre, start) = (command("ExecStartPre="), command("ExecStart="));
    assert_eq!(pre, [&start[..], &["--check".to_owned()]].concat());
    let sb = Sandbox::new();
    let aws = CountingServer::start();
    let config = write_config(
        &sb,
        &format!(
            "http = \"127.0.0.1:9090\"\nmin_shutdown_delay = 5\n[connections.prod]\n\
             cluster_identifier = \"examplecluster\"\ndb_user = \"alice\"\n\
             region = \"us-east-1\"\nendpoint_url = \"{}\"\nlisten = [\"127.0.0.1:15439\"]\n",
            aws.url()
        ),
    );
    let pre: Vec<&str> = pre.iter().map(String::as_str).collect();
    let o = run_with(&sb, &config, &pre);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("serve prod on 127.0.0.1:15439 "),
        "{}",
        stdout(&o)
    );
    let seconds = |key: &str| -> u64 {
        let line = stdout(&o);
        let v = line.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        v.parse().unwrap()
    };
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(stop > seconds("shutdown_timeout: ") + seconds("min_shutdown_delay: "));
    // A bad key fails the start: exit 2, one line.
    let config = write_config(&sb, "max_connections = 0\n");
    let o = run_with(&sb, &config, &pre);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(aws.calls() + aws.describe_calls(), 0);
}
