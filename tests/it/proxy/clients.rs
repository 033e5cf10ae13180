//! Real clients through `redshift-creds proxy`, each proven by a query that returns
//! `current_user` over a TLS upstream, with no password anywhere on the client side.

use super::{Rig, WHO, WHO_ANSWER};
use crate::support::{require_tool, stderr, stdout, strict};
use std::path::PathBuf;
use std::process::{Command, Output};

/// A file a client needs (a driver jar, an installed package), from `env_override` or
/// `default`; like [`require_tool`], a failure under tests/run.sh and a SKIPPED line otherwise.
pub(super) fn require_file(what: &str, env_override: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_override).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "SKIPPED: {what} is not installed at {} (set {env_override} or run tests/run.sh)",
        path.display()
    );
    assert!(!strict(), "{msg}; tests/run.sh must not skip");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
    None
}

/// A client process with a clean environment (no PG* variables, so no password).
fn client(rig: &Rig, program: impl AsRef<std::ffi::OsStr>) -> Command {
    clean(program, rig.sb.path())
}

/// A client process with a clean environment and `home` as its home.
pub(super) fn clean(program: impl AsRef<std::ffi::OsStr>, home: &std::path::Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("PGCONNECT_TIMEOUT", "20");
    c
}

fn explain(rig: &Rig, o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}\nserver log:\n{}",
        o.status,
        stdout(o),
        stderr(o),
        rig.log()
    )
}

fn assert_who(rig: &Rig, o: &Output) {
    assert!(o.status.success(), "{}", explain(rig, o));
    assert!(
        stdout(o).lines().any(|l| l.trim() == WHO_ANSWER),
        "{}",
        explain(rig, o)
    );
}

#[test]
fn psql_over_tcp_and_the_unix_socket() {
    let Some(rig) = Rig::start() else { return };
    let sock = rig.sb.path().join("sock");
    let unix = format!("unix:{}", sock.display());
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0", "--listen", &unix]);
    let tcp = proxy.tcp();
    let o = client(&rig, &rig.pg.psql)
        .arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} dbname=postgres user=whoever sslmode=disable",
            tcp.port()
        ))
        .args(["-Atc", WHO])
        .output()
        .unwrap();
    assert_who(&rig, &o);
    assert_eq!(
        proxy.unix(),
        sock.join(format!(".s.PGSQL.{}", tcp.port())),
        "the socket is named after the TCP port"
    );
    let o = client(&rig, &rig.pg.psql)
        .arg("-X")
        .arg("-h")
        .arg(&sock)
        .args([
            "-p",
            &tcp.port().to_string(),
            "-U",
            "whoever",
            "-d",
            "postgres",
        ])
        .args(["-Atc", WHO])
        .output()
        .unwrap();
    assert_who(&rig, &o);
    assert_eq!(rig.aws.calls(), 1, "both sessions used the cached password");
}

#[test]
fn pgcli_through_the_proxy() {
    let Some(pgcli) = require_tool("pgcli", "PGCLI") else {
        return;
    };
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let o = pgcli_command(pgcli, rig.sb.path(), proxy.tcp().port(), "postgres", WHO)
        .output()
        .unwrap();
    assert_who(&rig, &o);
}

/// pgcli running `query` once through the proxy on `port`, as any user with no password.
pub(super) fn pgcli_command(
    pgcli: PathBuf,
    home: &std::path::Path,
    port: u16,
    db: &str,
    query: &str,
) -> Command {
    let mut c = clean(pgcli, home);
    c.env("TERM", "dumb")
        .env("PGSSLMODE", "disable")
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "whoever", "-d", db, "--no-password"])
        .args(["--less-chatty", "--tuples-only", "--command", query]);
    c
}

/// The Python with psycopg 3 and redshift_connector (tests/run.sh's drivers venv).
fn python() -> Option<PathBuf> {
    require_file(
        "a Python with psycopg and redshift_connector",
        "PYDRIVERS",
        concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-drivers/bin/python"),
    )
}

#[test]
fn psycopg_through_the_proxy() {
    let Some(python) = python() else { return };
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let script = "import psycopg, sys\n\
        c = psycopg.connect(host='127.0.0.1', port=int(sys.argv[1]), dbname='postgres',\n\
            user='whoever', sslmode='disable')\n\
        print(c.execute(sys.argv[2]).fetchone()[0])\n\
        c.close()\n";
    let o = client(&rig, python)
        .args(["-c", script, &proxy.tcp().port().to_string(), WHO])
        .output()
        .unwrap();
    assert_who(&rig, &o);
}

/// redshift_connector always sends the Redshift startup parameter `client_protocol_version`,
/// which PostgreSQL refuses (42704) whoever relays it. So this proves what PostgreSQL can
/// show: the driver's session reaches the proxy without a password, the proxy logs in
/// upstream as the IAM user over TLS and passes the driver's parameters on, and the
/// driver gets PostgreSQL's own answer as an error. Against Redshift that parameter is known.
#[test]
fn redshift_connector_through_the_proxy_without_client_tls() {
    let Some(python) = python() else { return };
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    // redshift_connector insists on a password argument; the proxy never asks for it.
    let script = "import redshift_connector, sys\n\
        c = redshift_connector.connect(host='127.0.0.1', port=int(sys.argv[1]),\n\
            database='postgres', user='whoever', password='unused', ssl=False)\n\
        cur = c.cursor()\n\
        cur.execute(sys.argv[2])\n\
        print(cur.fetchone()[0])\n\
        c.close()\n";
    let o = client(&rig, python)
        .args(["-c", script, &proxy.tcp().port().to_string(), WHO])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(
        !o.status.success()
            && err.contains("'C': '42704'")
            && err.contains("unrecognized configuration parameter \"client_protocol_version\""),
        "{}",
        explain(&rig, &o)
    );
    let log = rig.log();
    assert!(
        log.contains("connection authorized: user=IAM:alice database=postgres")
            && log.contains("SSL enabled"),
        "the proxy logged in upstream as the IAM user over TLS: {log}"
    );
}

/// Java and the pgjdbc jar, or `None` (a skip, a failure under tests/run.sh).
pub(super) fn pgjdbc() -> Option<(PathBuf, PathBuf)> {
    let java = require_tool("java", "JAVA")?;
    let jar = require_file(
        "pgjdbc (libpostgresql-jdbc-java)",
        "PGJDBC",
        "/usr/share/java/postgresql.jar",
    )?;
    Some((java, jar))
}

/// pgjdbc opening `connections` connections one after the other to `jdbc:postgresql://…`
/// `url` as any user with an empty password, printing `query`'s first value on each.
pub(super) fn pgjdbc_command(
    (java, jar): (PathBuf, PathBuf),
    home: &std::path::Path,
    url: &str,
    query: &str,
    connections: u32,
) -> Command {
    let probe = home.join("Probe.java");
    std::fs::write(
        &probe,
        "import java.sql.*;\n\
         public class Probe {\n\
           public static void main(String[] a) throws Exception {\n\
             for (int i = 0; i < Integer.parseInt(a[2]); i++)\n\
             try (Connection c = DriverManager.getConnection(a[0], \"whoever\", \"\");\n\
                  ResultSet r = c.createStatement().executeQuery(a[1])) {\n\
               r.next();\n\
               System.out.println(r.getString(1));\n\
             }\n\
           }\n\
         }\n",
    )
    .unwrap();
    let mut c = clean(java, home);
    c.arg("-cp")
        .arg(jar)
        .arg(&probe)
        .args([url, query, &connections.to_string()]);
    c
}

#[test]
fn pgjdbc_through_the_proxy() {
    let Some(java) = pgjdbc() else {
        return;
    };
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let url = format!(
        "jdbc:postgresql://127.0.0.1:{}/postgres?sslmode=disable",
        proxy.tcp().port()
    );
    let o = pgjdbc_command(java, rig.sb.path(), &url, WHO, 1)
        .output()
        .unwrap();
    assert_who(&rig, &o);
}

#[test]
fn node_postgres_through_the_proxy() {
    let Some(node) = require_tool("node", "NODE") else {
        return;
    };
    let Some(dir) = require_file(
        "node-postgres (npm pg)",
        "NODE_CLIENTS",
        concat!(env!("CARGO_MANIFEST_DIR"), "/.node-clients"),
    ) else {
        return;
    };
    assert!(dir.join("node_modules/pg").is_dir(), "{}", dir.display());
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let script = "const { Client } = require('pg');\n\
        const c = new Client({ host: '127.0.0.1', port: Number(process.argv[1]),\n\
            database: 'postgres', user: 'whoever', ssl: false });\n\
        c.connect()\n\
          .then(() => c.query(process.argv[2]))\n\
          .then((r) => { console.log(Object.values(r.rows[0])[0]); return c.end(); })\n\
          .catch((e) => { console.error(e); process.exit(1); });\n";
    let o = client(&rig, node)
        .current_dir(&dir)
        .args(["-e", script, &proxy.tcp().port().to_string(), WHO])
        .output()
        .unwrap();
    assert_who(&rig, &o);
}

#[test]
fn dbt_debug_and_run_through_the_proxy() {
    let Some(dbt) = require_tool("dbt", "DBT") else {
        return;
    };
    let Some(rig) = Rig::start() else { return };
    rig.pg
        .superuser_sql(r#"grant create on database postgres to "IAM:alice""#);
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dbt");
    let scratch = rig.sb.path().join("dbt-scratch");
    let port = proxy.tcp().port().to_string();
    let run = |sub: &str| {
        client(&rig, &dbt)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", &port)
            .env("PGUSER", "whoever")
            // The fixture's profile reads PGPASSWORD; the proxy never asks for it.
            .env("PGPASSWORD", "unused")
            .env("PGDATABASE", "postgres")
            .env("PGSSLMODE", "disable")
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .env("DBT_VERSION_CHECK", "false")
            .env("DBT_USE_COLORS", "false")
            .env("DBT_LOG_PATH", &scratch)
            .env("DBT_TARGET_PATH", &scratch)
            .env("DBT_PACKAGES_INSTALL_PATH", &scratch)
            .args([sub, "--project-dir", project, "--profiles-dir", project])
            .output()
            .unwrap()
    };
    let o = run("debug");
    assert!(o.status.success(), "dbt debug: {}", explain(&rig, &o));
    assert!(
        stdout(&o).contains("All checks passed"),
        "{}",
        explain(&rig, &o)
    );
    let o = run("run");
    assert!(o.status.success(), "dbt run: {}", explain(&rig, &o));
    let owner = rig.pg.superuser_sql(
        "select viewowner from pg_views \
         where schemaname = 'redshift_creds_e2e' and viewname = 'whoami'",
    );
    assert_eq!(
        owner, "IAM:alice\n",
        "built by the IAM user through the proxy"
    );
}
