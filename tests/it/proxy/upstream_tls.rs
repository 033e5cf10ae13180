//! The proxy's TLS to a real PostgreSQL whose certificate is its own self-signed CA (CA:TRUE): accepted when sslrootcert holds that very certificate, as psql accepts it, and refused in words when it does not.

use super::{PASSWORD, ROLE, Raw, Rig, TURNS, Turn, WHO, WHO_ANSWER};
use crate::support::pg::PgServer;
use crate::support::{stderr, stdout};
use std::path::Path;
use std::process::Command;

/// A [`Rig`] whose PostgreSQL presents its self-signed CA certificate.
fn rig() -> Option<Rig> {
    let turn = Turn::Shared(TURNS.read().unwrap_or_else(|e| e.into_inner()));
    Rig::on(PgServer::builder().self_signed(), turn)
}

/// The proxy's arguments with `root` as the sslrootcert.
fn args_with_root(rig: &Rig, root: &Path) -> Vec<String> {
    let mut args = rig.args(&["--listen", "127.0.0.1:0"]);
    let at = args.iter().position(|a| a == "--sslrootcert").unwrap();
    args[at + 1] = root.to_str().unwrap().to_owned();
    args
}

#[test]
fn a_self_signed_ca_certificate_in_sslrootcert_is_accepted_as_psql_accepts_it() {
    let Some(rig) = rig() else { return };
    // psql takes this server with verify-full and the certificate as the root.
    let o = Command::new(&rig.pg.psql)
        .env_clear()
        .env("HOME", rig.sb.path())
        .env("PGPASSWORD", PASSWORD)
        .arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} dbname=postgres user={ROLE} sslmode=verify-full sslrootcert={}",
            rig.pg.port,
            rig.pg.ca_cert.display()
        ))
        .args([
            "-Atc",
            "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "psql: {}", stderr(&o));
    assert_eq!(stdout(&o), "true\n");
    // And so does the proxy.
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let mut c = Raw::connect(proxy.tcp(), "anyone", "postgres")
        .unwrap_or_else(|e| panic!("{e:?}\nproxy: {}\n{}", proxy.stderr(), rig.log()));
    assert_eq!(c.query(WHO).unwrap(), [WHO_ANSWER]);
}

#[test]
fn a_ca_certificate_that_is_not_in_sslrootcert_is_refused_in_words() {
    let Some(rig) = rig() else { return };
    let other = crate::support::pg::other_ca(rig.sb.path());
    let args = args_with_root(&rig, &other);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = super::Proxy::spawn(rig.sb.cmd(&args));
    let err = Raw::connect(proxy.tcp(), "anyone", "postgres")
        .err()
        .expect("no session with an unknown server certificate");
    assert_eq!(err.code, "08001", "{err:?}");
    assert!(
        err.message.contains(&format!(
            "TLS with 127.0.0.1:{} failed: it presents a CA certificate (CA:TRUE) as its own, \
             and that certificate is not in the sslrootcert file",
            rig.pg.port
        )),
        "{err:?}"
    );
    assert!(!err.message.contains("OtherError"), "{err:?}");
}
