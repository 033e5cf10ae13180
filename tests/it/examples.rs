//! The examples and docs work when copied: the config (its schema line, through `get`), the missing-profile hint, the systemd unit, the demo (its binaries, `--keep`), the README (quick start first, links that resolve) and the guide's examples.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, contract, require_tool, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

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
        .cmd(&crate::support::unreachable_args(
            "get",
            "http://127.0.0.1:9",
            &["--profile", "prod", "--cache", "none"],
        ))
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

/// The venv that holds moto_server, for the demo's MOTO_VENV.
fn moto_venv() -> Option<PathBuf> {
    let moto = require_tool("moto_server", "MOTO_SERVER")?;
    Some(moto.parent().and_then(Path::parent).unwrap().to_path_buf())
}

/// Checks a run of the demo: it succeeded, every step shows its command first, and its
/// numbered steps are the guide's, in the guide's order. Returns its stdout.
fn demo_ran(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", stderr(out));
    for step in text.split("\n== ").skip(1) {
        assert!(
            step.lines().nth(1).is_some_and(|l| l.starts_with("$ ")),
            "{step}"
        );
    }
    let guide = guide_demo_steps();
    let steps = numbered_steps(&text);
    assert!(!steps.is_empty(), "{text}");
    for (i, step) in steps.iter().enumerate() {
        let item = guide.get(i).map(|s| s.replace(['`', '*'], ""));
        assert!(
            item.as_ref().is_some_and(|item| item.starts_with(step)),
            "the guide's demo step {} is {item:?}, the demo's is {step:?}",
            i + 1
        );
    }
    text
}

/// The demo's numbered step headings, "N. title", in order.
fn numbered_steps(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("== "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

#[test]
fn the_demo_echoes_each_command_and_shows_exec_without_the_password() {
    let Some(venv) = moto_venv() else {
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .command(example("../demo.sh"), &[])
        .env("MOTO_VENV", venv)
        .env("REDSHIFT_CREDS", crate::support::bin())
        .output()
        .unwrap();
    let text = demo_ran(&out);
    assert_eq!(
        guide_demo_steps().len(),
        numbered_steps(&text).len() + 1,
        "the guide lists the demo's steps and the one --keep adds"
    );
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

/// PATH without the directories that hold a `redshift-creds`, so the demo sees
/// no installed one, with `first` in front.
fn path_without_installed(first: &Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| !d.join("redshift-creds").exists());
    std::env::join_paths(std::iter::once(first.to_path_buf()).chain(dirs)).unwrap()
}

/// Puts both binaries in `dir` (a hard link, or a copy across file systems),
/// `aws` saying whether redshift-creds-aws goes too.
fn place_binaries(dir: &Path, aws: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let programs: &[&str] = if aws {
        &["redshift-creds", "redshift-creds-aws"]
    } else {
        &["redshift-creds"]
    };
    for program in programs {
        let from = crate::support::bin().with_file_name(program);
        if std::fs::hard_link(&from, dir.join(program)).is_err() {
            std::fs::copy(&from, dir.join(program)).unwrap();
        }
    }
}

/// A `cargo` that logs its arguments to `log` and, for `build`, puts the front
/// into $CARGO_TARGET_DIR/debug, and redshift-creds-aws too only with
/// `--workspace`: what the real one does at the workspace root.
fn fake_cargo(bin_dir: &Path, log: &Path) {
    std::fs::create_dir_all(bin_dir).unwrap();
    let real = crate::support::bin();
    let dir = real.parent().unwrap().to_str().unwrap();
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >>'{log}'\n\
         case \" $* \" in *' build '*) ;; *) exit 101 ;; esac\n\
         out=\"$CARGO_TARGET_DIR/debug\"\n\
         mkdir -p \"$out\"\n\
         ln -f '{dir}/redshift-creds' \"$out/\" 2>/dev/null || cp '{dir}/redshift-creds' \"$out/\"\n\
         case \" $* \" in *' --workspace '*)\n\
         ln -f '{dir}/redshift-creds-aws' \"$out/\" 2>/dev/null || cp '{dir}/redshift-creds-aws' \"$out/\" ;;\n\
         esac\n",
        log = log.display(),
    );
    let cargo = bin_dir.join("cargo");
    std::fs::write(&cargo, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A demo run on a machine set up by the test: moto's venv, a sandbox, and a fake
/// `cargo` in `fake` that logs to `log`.
struct Demo {
    venv: PathBuf,
    sb: Sandbox,
    fake: PathBuf,
    log: PathBuf,
}

impl Demo {
    fn new() -> Option<Demo> {
        let venv = moto_venv()?;
        let sb = Sandbox::new();
        let fake = sb.path().join("fake-bin");
        let log = sb.path().join("cargo.log");
        fake_cargo(&fake, &log);
        Some(Demo {
            venv,
            sb,
            fake,
            log,
        })
    }

    /// Runs install/demo.sh with this PATH, building into the sandbox's `target`; its text.
    fn run(&self, path: &std::ffi::OsStr) -> String {
        let out = self
            .sb
            .command(example("../demo.sh"), &[])
            .env("MOTO_VENV", &self.venv)
            .env("PATH", path)
            .env("CARGO_TARGET_DIR", self.sb.path().join("target"))
            .output()
            .unwrap();
        demo_ran(&out)
    }

    /// What the fake cargo was asked, one call a line.
    fn cargo_calls(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A fresh clone where install/install.sh never ran: no redshift-creds on PATH,
/// no $REDSHIFT_CREDS. The demo builds the whole workspace (both binaries) and
/// runs what it built.
#[test]
fn the_demo_builds_the_whole_workspace_when_nothing_is_installed() {
    let Some(demo) = Demo::new() else {
        return;
    };
    let text = demo.run(&path_without_installed(&demo.fake));
    assert_eq!(demo.cargo_calls(), "build --locked --workspace\n", "{text}");
    let target = demo.sb.path().join("target");
    let binary = format!("binary: {}", target.join("debug/redshift-creds").display());
    assert!(text.lines().any(|l| l == binary), "{binary}:\n{text}");
}

/// After install/install.sh: both binaries on PATH, and the demo runs them
/// without building anything. With only the front installed, it builds.
#[test]
fn the_demo_runs_the_installed_binaries_when_both_are_on_path() {
    let Some(demo) = Demo::new() else {
        return;
    };
    let installed = demo.sb.path().join("installed");
    place_binaries(&installed, true);
    let path = path_without_installed(&installed);
    let path = std::env::join_paths(
        std::iter::once(demo.fake.clone()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    let text = demo.run(&path);
    assert!(!demo.log.exists(), "cargo ran: {text}");
    let binary = format!("binary: {}", installed.join("redshift-creds").display());
    assert!(text.lines().any(|l| l == binary), "{binary}:\n{text}");

    // The front alone on PATH cannot answer a miss: the demo builds instead.
    std::fs::remove_file(installed.join("redshift-creds-aws")).unwrap();
    demo.run(&path);
    assert_eq!(demo.cargo_calls(), "build --locked --workspace\n");
}

/// What `install/demo.sh --keep` left running; its stop script runs on drop,
/// so a failing test leaves nothing behind.
struct Kept {
    stop: PathBuf,
    env: PathBuf,
}

impl Kept {
    /// Runs `bash -c 'SCRIPT'` in a shell that has sourced the printed env file.
    fn shell(&self, sb: &Sandbox, script: &str) -> std::process::Command {
        let script = format!(". \"$1\" && {script}");
        let mut c = sb.command("bash", &["-c", &script, "bash"]);
        c.arg(&self.env);
        c
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        // Only the script the demo wrote: `stop` in its redshift-creds-demo.* directory.
        let ours = self.stop.file_name().is_some_and(|n| n == "stop")
            && self
                .stop
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d.to_string_lossy().starts_with("redshift-creds-demo."));
        if ours && self.stop.is_file() {
            let _ = std::process::Command::new(&self.stop).output();
        }
    }
}

/// The word after `prefix` on the line that starts with it.
fn word_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{text}"));
    line.split_whitespace().next().unwrap()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn listening(port: &str) -> bool {
    std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok()
}

/// Starts `redshift-creds proxy local` from the kept shell and waits (30 s) for
/// its "listening on" line.
fn start_proxy(kept: &Kept, sb: &Sandbox) -> std::process::Child {
    use std::io::BufRead;
    let mut proxy = kept
        .shell(sb, "exec redshift-creds proxy local")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = proxy.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = proxy.kill();
                panic!("the proxy did not listen: {seen:#?}");
            }
        }
    }
    proxy
}

/// `install/demo.sh --keep`: moto and a local PostgreSQL with TLS stay up, and
/// the printed commands work: `doctor local`, `exec local -- psql` (a real
/// login as IAM:temp_creds_user over verified TLS) and `proxy local`. Its stop
/// script ends both and removes the directory.
#[test]
fn the_demo_keep_leaves_a_local_connection_for_doctor_exec_and_proxy() {
    let Some(venv) = moto_venv() else {
        return;
    };
    let Some(_) = require_tool("psql", "PSQL") else {
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .command(example("../demo.sh"), &["--keep"])
        .env("MOTO_VENV", venv)
        .env("REDSHIFT_CREDS", crate::support::bin())
        .output()
        .unwrap();
    if stderr(&out).contains("--keep needs PostgreSQL's server") {
        crate::support::skip_or_fail(&stderr(&out));
        return;
    }
    // The stop script (the last line) runs at the end whatever fails first.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text.lines().last().unwrap_or_default();
    let mut kept = Kept {
        stop: PathBuf::from(last.rsplit(": ").next().unwrap()),
        env: PathBuf::new(),
    };
    demo_ran(&out);
    assert_eq!(guide_demo_steps().len(), numbered_steps(&text).len());
    kept.env = PathBuf::from(word_after(&text, "$ . "));
    assert!(kept.stop.is_file() && kept.env.is_file(), "{text}");
    let config = std::fs::read_to_string(kept.env.with_file_name("config.toml")).unwrap();
    assert!(config.contains("[connections.local]"), "{config}");
    let moto_port = word_after(&config, "endpoint_url = \"http://127.0.0.1:").trim_end_matches('"');
    let pg_port = word_after(&config, "port = ");

    let doctor = kept
        .shell(&sb, "redshift-creds doctor local")
        .output()
        .unwrap();
    assert!(
        doctor.status.success(),
        "{}{}",
        stdout(&doctor),
        stderr(&doctor)
    );
    assert!(
        stdout(&doctor).contains(&format!("endpoint: 127.0.0.1:{pg_port}")),
        "{}",
        stdout(&doctor)
    );

    let who = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()";
    let exec = kept
        .shell(
            &sb,
            &format!("redshift-creds exec local -- psql -X -At -c '{who}'"),
        )
        .output()
        .unwrap();
    assert_eq!(
        stdout(&exec),
        "IAM:temp_creds_user|t\n",
        "{}",
        stderr(&exec)
    );

    let mut proxy = start_proxy(&kept, &sb);
    let via_proxy = word_after(&text, "$ psql \"host=127.0.0.1 port=");
    let through = kept
        .shell(
            &sb,
            &format!("psql -X -At \"host=127.0.0.1 port={via_proxy} dbname=exampledb sslmode=disable\" -c 'select current_user'"),
        )
        .output()
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(
        stdout(&through),
        "IAM:temp_creds_user\n",
        "{}",
        stderr(&through)
    );

    assert!(listening(moto_port) && listening(pg_port));
    let stopped = std::process::Command::new(&kept.stop).output().unwrap();
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(
        !kept.env.parent().unwrap().exists(),
        "the directory is removed"
    );
    assert!(!listening(moto_port), "moto_server still answers");
    assert!(!listening(pg_port), "PostgreSQL still answers");
}

/// The text of docs/guide.md.
fn guide() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join("docs/guide.md")).unwrap()
}

/// The body of the first ```LANG block after `marker` in `text`.
fn fenced<'a>(text: &'a str, marker: &str, lang: &str) -> &'a str {
    let rest = &text[text.find(marker).unwrap_or_else(|| panic!("{marker}"))..];
    let open = format!("```{lang}\n");
    let start = rest.find(&open).unwrap_or_else(|| panic!("{open}")) + open.len();
    let len = rest[start..].find("```").unwrap();
    &rest[start..start + len]
}

/// The numbered list in the guide's "Demo without AWS", one string per item.
fn guide_demo_steps() -> Vec<String> {
    let text = guide();
    let section = text.split("\n## Demo without AWS").nth(1).unwrap();
    let mut items: Vec<String> = Vec::new();
    for line in section.lines() {
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            items.push(line.to_string());
        } else if line.starts_with("   ") && !items.is_empty() {
            let last = items.last_mut().unwrap();
            last.push(' ');
            last.push_str(line.trim());
        } else if !items.is_empty() {
            break;
        }
    }
    items
}

#[test]
fn the_guides_config_is_the_example_config() {
    let text = guide();
    let shown = fenced(
        &text,
        "The example, [`install/examples/config.toml`]",
        "toml",
    );
    let file = std::fs::read_to_string(example("config.toml")).unwrap();
    assert_eq!(shown, file);
}

#[test]
fn the_guides_dbt_profile_is_the_example_profile_without_its_comments() {
    let text = guide();
    let shown = fenced(&text, "A profile that reads everything", "yaml");
    let file = std::fs::read_to_string(example("dbt/profiles.yml")).unwrap();
    let uncommented: String = file
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{}\n", l.split(" # ").next().unwrap().trim_end()))
        .collect();
    assert_eq!(shown, uncommented);
}

/// The guide's "Strict." examples, run: each `$ redshift-creds ARGS` line and
/// the stderr line after it, with the sandbox's home shown as /home/alice.
#[test]
fn the_guides_strict_config_errors_are_what_get_prints() {
    let text = guide();
    let block = fenced(&text, "**Strict.**", "console");
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 6, "{block}");
    let sb = Sandbox::new();
    let dir = sb.path().join(".config/redshift-creds");
    std::fs::create_dir_all(&dir).unwrap();
    // The first example misspells db_user on line 3; the second quotes the port on line 4;
    // the third asks the example config for a name it lacks.
    let prod = "[connections.prod]\ncluster_identifier = \"examplecluster\"\n";
    let configs = [
        format!("{prod}db_usr = \"alice\"\n"),
        format!("{prod}db_user = \"alice\"\nport = \"25439\"\n"),
        std::fs::read_to_string(example("config.toml")).unwrap(),
    ];
    for (pair, config) in lines.chunks(2).zip(configs) {
        let args: Vec<&str> = pair[0]
            .strip_prefix("$ redshift-creds ")
            .unwrap()
            .split(' ')
            .collect();
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
        let err = stderr(&out).replace(sb.path().to_str().unwrap(), "/home/alice");
        assert_eq!(err, format!("{}\n", pair[1]), "{}", pair[0]);
    }
}
