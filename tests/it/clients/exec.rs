//! End to end with real clients: psql, pgcli and dbt connect to a real
//! PostgreSQL over verified TLS with credentials from moto, handed over by
//! `redshift-creds exec` (environment only) or a pgpass file.
#![cfg(unix)]

use crate::support::moto::Moto;
use crate::support::pg::PgServer;
use crate::support::{Sandbox, password, require_tool, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};

const CLUSTER: &str = "examplecluster";
const USER: &str = "alice";
const ROLE: &str = "IAM:alice";
const WHO: &str = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()";

/// moto with the cluster, a TLS (or plain) PostgreSQL, and a sandbox whose
/// cached password from moto is set on the role named like the IAM user.
struct Rig {
    moto: Moto,
    pg: PgServer,
    sb: Sandbox,
    url: String,
    port: String,
    ca: String,
}

impl Rig {
    fn start(tls: bool) -> Option<Rig> {
        let moto = Moto::start()?;
        let pg = PgServer::start(tls)?;
        moto.create_cluster(CLUSTER);
        let url = moto.url();
        let rig = Rig {
            port: pg.port.to_string(),
            ca: pg.ca_cert.to_str().unwrap().to_string(),
            moto,
            pg,
            sb: Sandbox::new(),
            url,
        };
        // The first call reaches moto and caches the password; every later
        // command in the test is a hit on the same one.
        let out = rig.sb.run(&rig.args("get", &[]));
        let pw = password(&out);
        rig.pg.set_password(ROLE, &pw);
        Some(rig)
    }

    /// SUB with the connection's options, then EXTRA.
    fn args<'a>(&'a self, sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            sub,
            "--cluster-identifier",
            CLUSTER,
            "--db-user",
            USER,
            "--db-name",
            "postgres",
            "--duration-seconds",
            "3600",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &self.url,
            "--cache",
            "file",
            "--host",
            "127.0.0.1",
            "--port",
            &self.port,
            "--sslmode",
            "verify-ca",
            "--sslrootcert",
            &self.ca,
        ];
        v.extend_from_slice(extra);
        v
    }

    /// `redshift-creds exec <connection> -- PROGRAM ARGS`.
    fn exec(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let prog = program.to_str().unwrap();
        let mut v = self.args("exec", &[]);
        v.push("--");
        v.push(prog);
        v.extend_from_slice(args);
        let mut c = self.sb.cmd(&v);
        c.env("PGCONNECT_TIMEOUT", "10");
        for (k, val) in env {
            c.env(k, val);
        }
        c.output().unwrap()
    }

    fn explain(&self, o: &Output) -> String {
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}\nserver log:\n{}",
            o.status,
            stdout(o),
            stderr(o),
            self.pg.log_text()
        )
    }
}

#[test]
fn psql_through_exec_connects_as_the_iam_user_over_tls() {
    let Some(rig) = Rig::start(true) else { return };
    let calls = rig.moto.requests();
    let o = rig.exec(&rig.pg.psql, &["-X", "-Atc", WHO], &[]);
    assert!(o.status.success(), "{}", rig.explain(&o));
    assert_eq!(stdout(&o), "IAM:alice|t\n", "{}", rig.explain(&o));
    assert_eq!(rig.moto.requests(), calls, "exec used the cached password");

    // The exit code is psql's own: 1 for a failed -c statement.
    let o = rig.exec(
        &rig.pg.psql,
        &["-X", "-v", "ON_ERROR_STOP=1", "-c", "select 1/0"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", rig.explain(&o));
    assert!(stderr(&o).contains("division by zero"), "{}", stderr(&o));
}

#[test]
fn psql_through_exec_refuses_a_server_without_tls() {
    let Some(rig) = Rig::start(false) else { return };
    let o = rig.exec(&rig.pg.psql, &["-X", "-Atc", WHO], &[]);
    assert!(
        !o.status.success(),
        "a server without TLS was accepted: {}",
        rig.explain(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", rig.explain(&o));
    assert!(
        stderr(&o).contains("SSL"),
        "psql says TLS was the problem: {}",
        stderr(&o)
    );
    // The password itself was right: without TLS enforcement (which
    // redshift-creds never hands out) the same credentials log in.
    let o = Command::new(&rig.pg.psql)
        .env_clear()
        .env("PGPASSWORD", password(&rig.sb.run(&rig.args("get", &[]))))
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10")
        .arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} dbname=postgres user={ROLE}",
            rig.port
        ))
        .args(["-Atc", WHO])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "IAM:alice|f\n", "{}", rig.explain(&o));
}

/// dbt's environment for a quiet, local run: `home` as HOME, logs and targets in `scratch`.
fn dbt_env<'a>(home: &'a str, scratch: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("HOME", home),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
        ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
        ("DBT_VERSION_CHECK", "false"),
        ("DBT_USE_COLORS", "false"),
        ("DBT_LOG_PATH", scratch),
        ("DBT_TARGET_PATH", scratch),
    ]
}

#[test]
fn pgcli_through_exec_runs_a_query() {
    let Some(pgcli) = require_tool("pgcli", "PGCLI") else {
        return;
    };
    let Some(rig) = Rig::start(true) else { return };
    let home = rig.sb.path().to_str().unwrap().to_string();
    let o = rig.exec(
        &pgcli,
        &[
            "--no-password",
            "--less-chatty",
            "--tuples-only",
            "--command",
            "select current_user || '/' || ssl::text as who from pg_stat_ssl where pid = pg_backend_pid()",
        ],
        &[
            ("TERM", "dumb"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
            ("XDG_CONFIG_HOME", &format!("{home}/xdg-config")),
        ],
    );
    assert!(o.status.success(), "{}", rig.explain(&o));
    // pgcli exits 0 even when a statement fails, so the proof is the row.
    assert!(
        stdout(&o).contains("IAM:alice/true"),
        "pgcli printed the row: {}",
        rig.explain(&o)
    );
}

#[test]
fn dbt_through_exec_passes_debug_and_builds_a_model() {
    let Some(dbt) = require_tool("dbt", "DBT") else {
        return;
    };
    let Some(rig) = Rig::start(true) else { return };
    // dbt run creates a schema; the IAM role may do that in its database.
    rig.pg
        .superuser_sql(r#"grant create on database postgres to "IAM:alice""#);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dbt");
    let scratch = rig.sb.path().join("dbt-scratch");
    let scratch = scratch.to_str().unwrap();
    let home = rig.sb.path().to_str().unwrap();
    let mut env = dbt_env(home, scratch);
    env.push(("DBT_PACKAGES_INSTALL_PATH", scratch));
    let common = ["--project-dir", project, "--profiles-dir", project];

    let mut debug = vec!["debug"];
    debug.extend_from_slice(&common);
    let o = rig.exec(&dbt, &debug, &env);
    assert!(o.status.success(), "dbt debug: {}", rig.explain(&o));
    assert!(
        stdout(&o).contains("All checks passed"),
        "{}",
        rig.explain(&o)
    );

    let mut run = vec!["run"];
    run.extend_from_slice(&common);
    let o = rig.exec(&dbt, &run, &env);
    assert!(o.status.success(), "dbt run: {}", rig.explain(&o));
    // The view exists, built (so owned) by the IAM user.
    let owner = rig.pg.superuser_sql(
        "select viewowner from pg_views \
         where schemaname = 'redshift_creds_e2e' and viewname = 'whoami'",
    );
    assert_eq!(owner, "IAM:alice\n");
}

#[test]
fn psql_reads_the_pgpass_file_written_by_pgpass() {
    let Some(rig) = Rig::start(true) else { return };
    let pgpass = rig.sb.path().join("pgpass");
    std::fs::write(&pgpass, "otherhost:5432:*:bob:hunter2\n").unwrap();
    let o = rig
        .sb
        .cmd(&rig.args("pgpass", &[]))
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", rig.explain(&o));
    let text = std::fs::read_to_string(&pgpass).unwrap();
    // The new line goes first (libpq takes the first match); the other
    // line stays as it was.
    assert_eq!(text.lines().count(), 2, "{text:?}");
    assert!(
        text.ends_with("\notherhost:5432:*:bob:hunter2\n"),
        "{text:?}"
    );
    assert!(
        text.starts_with(&format!("127.0.0.1:{}:postgres:IAM\\:alice:", rig.port)),
        "{text:?}"
    );

    // psql with no password anywhere but the pgpass file.
    let psql_with = |passfile: &Path| {
        Command::new(&rig.pg.psql)
            .env_clear()
            .env("HOME", rig.sb.path())
            .env("PGPASSFILE", passfile)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGSSLMODE", "verify-ca")
            .env("PGSSLROOTCERT", &rig.ca)
            .args(["-X", "-w", "-h", "127.0.0.1", "-p", &rig.port])
            .args(["-U", ROLE, "-d", "postgres", "-Atc", WHO])
            .output()
            .unwrap()
    };
    let o = psql_with(&pgpass);
    assert!(o.status.success(), "{}", rig.explain(&o));
    assert_eq!(stdout(&o), "IAM:alice|t\n");

    // Without the file, the same psql has nothing to log in with.
    let o = psql_with(&rig.sb.path().join("absent"));
    assert!(!o.status.success(), "{}", rig.explain(&o));
}

/// The example profile of install/examples/dbt, for dbt-postgres (the venv
/// has no dbt-redshift): only the adapter lines differ, every `env_var` is
/// the example's own.
fn example_dbt_project(dir: &Path) {
    let profile = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/install/examples/dbt/profiles.yml"
    ))
    .unwrap();
    assert!(
        profile.contains("type: redshift"),
        "the example changed: {profile}"
    );
    let profile: String = profile
        .replace("type: redshift", "type: postgres")
        .lines()
        .filter(|l| !l.trim_start().starts_with("method:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("profiles.yml"), profile).unwrap();
    std::fs::write(
        dir.join("dbt_project.yml"),
        "name: example\nversion: '1.0'\nconfig-version: 2\nprofile: redshift\n",
    )
    .unwrap();
}

#[test]
fn the_example_dbt_profile_passes_debug_with_and_without_db_name() {
    let Some(dbt) = require_tool("dbt", "DBT") else {
        return;
    };
    let Some(rig) = Rig::start(true) else { return };
    let project = rig.sb.path().join("example-dbt");
    example_dbt_project(&project);
    let project = project.to_str().unwrap();
    let scratch = rig.sb.path().join("dbt-scratch");
    let scratch = scratch.to_str().unwrap();
    let env = dbt_env(rig.sb.path().to_str().unwrap(), scratch);
    let debug = ["debug", "--project-dir", project, "--profiles-dir", project];
    let o = rig.exec(&dbt, &debug, &env);
    assert!(
        stdout(&o).contains("All checks passed"),
        "with --db-name: {}",
        rig.explain(&o)
    );

    // Without --db-name, PGDATABASE is unset and the profile's default, dev, applies.
    rig.pg.superuser_sql("create database dev");
    let mut args: Vec<&str> = rig.args("exec", &[]);
    let i = args.iter().position(|a| *a == "--db-name").unwrap();
    args.drain(i..i + 2);
    let mut get = args.clone();
    get[0] = "get";
    let pw = password(&rig.sb.run(&get));
    rig.pg.set_password(ROLE, &pw);
    args.push("--");
    args.push(dbt.to_str().unwrap());
    args.extend_from_slice(&debug);
    let mut c = rig.sb.cmd(&args);
    c.env("PGCONNECT_TIMEOUT", "10").envs(env);
    let o = c.output().unwrap();
    assert!(
        stdout(&o).contains("All checks passed"),
        "without --db-name: {}",
        rig.explain(&o)
    );
    assert!(stdout(&o).contains("database: dev"), "{}", rig.explain(&o));
}
