//! The PostgreSQL test peer itself: TLS under the test CA, a role named like
//! an IAM user, a password full of quoting hazards.
#![cfg(unix)]

use crate::support::pg::PgServer;
use std::process::{Command, Output};

const ROLE: &str = "IAM:smoke";
const PASSWORD: &str = "p'w\"x:y\\z";

/// psql over TCP as ROLE, the way a client under `redshift-creds exec` would
/// connect: everything from PG* variables except what the conninfo gives.
fn psql_tcp(pg: &PgServer, sslmode: &str) -> Output {
    Command::new(&pg.psql)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", pg.socket_dir.parent().unwrap())
        .env("PGSSLMODE", sslmode)
        .env("PGSSLROOTCERT", &pg.ca_cert)
        .env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} dbname=postgres user={ROLE}",
            pg.port
        ))
        .args([
            "-Atc",
            "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()",
        ])
        .output()
        .unwrap()
}

#[test]
fn tls_server_accepts_the_role_over_verified_tls() {
    let Some(pg) = PgServer::start(true) else {
        return;
    };
    pg.set_password(ROLE, PASSWORD);
    // Setting it again must work too (the role exists now).
    pg.set_password(ROLE, PASSWORD);
    let o = psql_tcp(&pg, "verify-ca");
    assert!(
        o.status.success(),
        "{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        pg.log_text()
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "IAM:smoke|t\n");
    // verify-full too: the certificate names 127.0.0.1.
    let o = psql_tcp(&pg, "verify-full");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without TLS the hba rules refuse the connection.
    let o = psql_tcp(&pg, "disable");
    assert!(!o.status.success(), "a plaintext connection was accepted");
    assert_eq!(
        pg.superuser_sql("select rolcanlogin from pg_roles where rolname = 'IAM:smoke'"),
        "t\n"
    );
}

#[test]
fn tls_server_rejects_a_wrong_password() {
    let Some(pg) = PgServer::start(true) else {
        return;
    };
    pg.set_password(ROLE, "something else");
    let o = psql_tcp(&pg, "verify-ca");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn plain_server_fails_verify_ca_but_takes_a_plain_connection() {
    let Some(pg) = PgServer::start(false) else {
        return;
    };
    pg.set_password(ROLE, PASSWORD);
    let o = psql_tcp(&pg, "verify-ca");
    assert!(
        !o.status.success(),
        "verify-ca succeeded against a server without TLS: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = psql_tcp(&pg, "disable");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "IAM:smoke|f\n");
}
