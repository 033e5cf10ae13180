//! `redshift-creds proxy --identity-center` end to end: the token comes from the fake AWS's
//! GetIdentityCenterAuthToken through the cache, and the proxy logs in with Redshift's token
//! login (request 14) to the test kit's fake Redshift, for psql and psycopg, with one API
//! call for many connections.

use super::Proxy;
use crate::support::counting::CountingServer;
use crate::support::{Sandbox, verified_upstream};
use redshift_creds_testkit::redshift_idp::IdpServer;
use std::process::Command;

const IDC_USER: &str = "alice@example.com";

/// The proxy for `target` (e.g. `--cluster-identifier examplecluster`) with
/// `--identity-center`, upstream the fake Redshift.
fn idc_proxy(sb: &Sandbox, aws: &CountingServer, idp: &IdpServer, target: &[&str]) -> Proxy {
    let (url, port) = (aws.url(), idp.port.to_string());
    let mut args = vec!["proxy", "--identity-center"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--region", "us-east-1", "--endpoint-url", &url]);
    args.extend_from_slice(&to_fake_redshift(idp, &port));
    Proxy::spawn(sb.cmd(&args))
}

/// The proxy's arguments for the file cache and the fake Redshift upstream at `port`
/// (verify-full against its CA), listening on a free loopback port.
fn to_fake_redshift<'a>(idp: &'a IdpServer, port: &'a str) -> Vec<&'a str> {
    let mut v = vec!["--cache", "file"];
    v.extend(verified_upstream(port, idp.ca_cert.to_str().unwrap()));
    v.extend(["--listen", "127.0.0.1:0"]);
    v
}

const CLUSTER: &[&str] = &["--cluster-identifier", "examplecluster"];

/// The fake AWS, and the fake Redshift knowing its first `n` tokens as alice's.
fn idc_fakes(n: u32) -> (CountingServer, IdpServer, Box<dyn std::any::Any>) {
    let aws = CountingServer::start();
    let (idp, rt) = IdpServer::start_blocking();
    // The fake AWS numbers its tokens; the fake Redshift knows them as alice's.
    for n in 1..=n {
        idp.issuer()
            .accept(&format!("idc-token-{n}.QUJD/+="), IDC_USER, 3600);
    }
    (aws, idp, Box::new(rt))
}

#[test]
fn psql_and_psycopg_log_in_as_the_identity_center_user_with_one_token() {
    let (aws, idp, _rt) = idc_fakes(5);
    let sb = Sandbox::new();
    let proxy = idc_proxy(&sb, &aws, &idp, CLUSTER);
    let port = proxy.tcp().port().to_string();
    let conninfo = format!("host=127.0.0.1 port={port} user=whoever dbname=dev sslmode=disable");
    for _ in 0..3 {
        psql_is_the_idc_user(&conninfo, &proxy);
    }
    if let Some(python) = std::env::var_os("PYDRIVERS") {
        let script = "import psycopg, sys\n\
            c = psycopg.connect(sys.argv[1])\n\
            print(c.execute('select current_user').fetchone()[0])\n";
        let o = Command::new(python)
            .args(["-c", script, &conninfo])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), IDC_USER);
    } else {
        assert!(!crate::support::strict(), "PYDRIVERS is needed");
    }
    assert_eq!(aws.idc_calls().len(), 1, "one token for every connection");
    assert_eq!(aws.calls(), 0, "no password was asked for");
    let seen = idp.seen();
    assert!(seen.len() >= 3, "{seen:?}");
    for s in &seen {
        assert!(s.accepted, "{s:?}");
        assert!(s.nul, "the JDBC layout, with its NUL: {s:?}");
        assert_eq!(s.token.as_deref(), Some("idc-token-1.QUJD/+="));
        let get = |k: &str| {
            s.params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("idp_type"), Some("AwsIdc"), "{s:?}");
        assert_eq!(get("token_type"), Some("SUBJECT_TOKEN"), "{s:?}");
        assert_eq!(get("user"), None, "no user is sent: {s:?}");
        assert_eq!(get("database"), Some("dev"));
    }
    let log = proxy.stderr();
    assert!(
        !log.contains("idc-token-"),
        "a token reached the log: {log}"
    );
}

/// psql's `select current_user` through the proxy at `conninfo`, asserted to be the IdC user.
fn psql_is_the_idc_user(conninfo: &str, proxy: &Proxy) {
    let o = Command::new("psql")
        .args(["-XAtq", "-d", conninfo, "-c", "select current_user"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PGCONNECT_TIMEOUT", "180")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\nproxy: {}",
        String::from_utf8_lossy(&o.stderr),
        proxy.stderr()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), IDC_USER);
}

/// The fake SSO-OIDC, the fake Redshift (knowing `access-token-1` as alice's) and the
/// sandbox of a browser sign-in test.
struct SignInRig {
    oidc: redshift_creds_testkit::sso_oidc::SsoOidcServer,
    idp: IdpServer,
    _rt: Box<dyn std::any::Any>,
    sb: Sandbox,
}

impl SignInRig {
    fn start() -> SignInRig {
        let oidc = redshift_creds_testkit::sso_oidc::SsoOidcServer::start();
        let (idp, _rt) = IdpServer::start_blocking();
        idp.issuer().accept("access-token-1", IDC_USER, 3600);
        SignInRig {
            oidc,
            idp,
            _rt: Box::new(_rt),
            sb: Sandbox::new(),
        }
    }

    /// The proxy with a browser sign-in; the person at the browser (`$BROWSER`) waits
    /// `delay` seconds, then follows the sign-in page's redirect to the callback (or, with
    /// `None`, never does).
    fn proxy(&self, delay: Option<u32>, extra: &[&str]) -> Proxy {
        let browser = self.sb.path().join("browser.sh");
        let script = match delay {
            Some(d) => format!(
                "#!/bin/sh\nsleep {d}\nexec curl -sS -L --max-time 30 -o /dev/null \"$1\"\n"
            ),
            None => "#!/bin/sh\nexit 0\n".to_owned(),
        };
        std::fs::write(&browser, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (callback, port) = (
            redshift_creds_testkit::free_port().to_string(),
            self.idp.port.to_string(),
        );
        let mut args = vec![
            "proxy",
            "--idc-issuer-url",
            "https://identitycenter.amazonaws.com/ssoins-0123456789abcdef",
            "--idc-region",
            "eu-west-1",
            "--idc-listen-port",
            &callback,
            "--cluster-identifier",
            "examplecluster",
            "--region",
            "us-east-1",
        ];
        args.extend_from_slice(&to_fake_redshift(&self.idp, &port));
        args.extend_from_slice(extra);
        let mut cmd = self.sb.cmd(&args);
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_ENDPOINT_URL_SSO_OIDC", self.oidc.url())
            .env("BROWSER", &browser);
        Proxy::spawn(cmd)
    }

    /// Every login the fake Redshift saw was the access token, as an `ACCESS_TOKEN`.
    fn assert_access_token_logins(&self) {
        let seen = self.idp.seen();
        assert!(!seen.is_empty());
        for s in seen {
            assert!(s.accepted, "{s:?}");
            assert_eq!(s.token.as_deref(), Some("access-token-1"));
            let get = |k: &str| {
                s.params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("token_type"), Some("ACCESS_TOKEN"), "{s:?}");
        }
    }
}

fn conninfo(proxy: &Proxy) -> String {
    format!(
        "host=127.0.0.1 port={} user=whoever dbname=dev sslmode=disable",
        proxy.tcp().port()
    )
}

/// A browser sign-in (`--idc-issuer-url`) through the proxy: one sign-in, and every client
/// after it logs in as the Identity Center user with its access token.
#[test]
fn one_browser_sign_in_serves_every_client_through_the_proxy() {
    let rig = SignInRig::start();
    let proxy = rig.proxy(Some(0), &[]);
    let conninfo = conninfo(&proxy);
    for _ in 0..3 {
        psql_is_the_idc_user(&conninfo, &proxy);
    }
    assert_eq!(rig.oidc.sign_ins(), 1, "one sign-in for every connection");
    rig.assert_access_token_logins();
    let log = proxy.stderr();
    assert!(log.contains("/authorize?"), "the URL is said: {log}");
    assert!(
        !log.contains("access-token-1"),
        "a token reached the log: {log}"
    );
}

/// The sign-in starts with the proxy, and a person may take longer than the engine's
/// usual 30 s login bound: a client that connects at once waits for the sign-in (bounded
/// by `--idc-response-timeout`) and gets in, and so does one arriving meanwhile, with one
/// sign-in.
#[test]
fn a_client_waits_for_a_slow_browser_sign_in_started_with_the_proxy() {
    let rig = SignInRig::start();
    let started = std::time::Instant::now();
    let proxy = rig.proxy(Some(35), &[]);
    // Listening at once, with the sign-in page said, before anyone connected.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(proxy.stderr().contains("/authorize?"), "{}", proxy.stderr());
    let conninfo = conninfo(&proxy);
    let second = {
        let (c, p) = (conninfo.clone(), proxy.tcp().port());
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            Command::new("psql")
                .args(["-XAtq", "-d", &c, "-c", "select current_user"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .output()
                .map(|o| (o, p))
                .unwrap()
        })
    };
    psql_is_the_idc_user(&conninfo, &proxy);
    assert!(started.elapsed() >= std::time::Duration::from_secs(35));
    let (o, _) = second.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), IDC_USER);
    psql_is_the_idc_user(&conninfo, &proxy);
    assert_eq!(rig.oidc.sign_ins(), 1, "one sign-in for every connection");
    rig.assert_access_token_logins();
}

/// A sign-in that never completes reaches every client waiting for it as an error with the
/// reason, never a hang.
#[test]
fn a_timed_out_sign_in_reaches_the_waiting_clients_as_an_error() {
    let rig = SignInRig::start();
    let proxy = rig.proxy(None, &["--idc-response-timeout", "3"]);
    let conninfo = conninfo(&proxy);
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let c = conninfo.clone();
            std::thread::spawn(move || {
                Command::new("psql")
                    .args(["-XAtq", "-d", &c, "-c", "select current_user"])
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for c in clients {
        let o = c.join().unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("no browser sign-in within 3 s"),
            "{err}\nproxy: {}",
            proxy.stderr()
        );
    }
    assert_eq!(rig.oidc.sign_ins(), 0);
}

/// Redshift Serverless through the proxy: `--identity-center --workgroup`, the token from
/// Serverless's GetIdentityCenterAuthToken (JSON protocol), one for many connections.
#[test]
fn serverless_workgroup_through_the_proxy_with_identity_center() {
    let (aws, idp, _rt) = idc_fakes(3);
    let sb = Sandbox::new();
    let proxy = idc_proxy(&sb, &aws, &idp, &["--workgroup", "examplewg"]);
    let conninfo = conninfo(&proxy);
    for _ in 0..3 {
        psql_is_the_idc_user(&conninfo, &proxy);
    }
    assert_eq!(aws.idc_calls(), ["workgroup:examplewg"]);
    assert_eq!(aws.calls(), 0, "no password was asked for");
    for s in idp.seen() {
        assert!(s.accepted, "{s:?}");
        assert_eq!(s.token.as_deref(), Some("idc-token-1.QUJD/+="));
    }
}

/// A server that takes each token once: every connection still gets in, the engine asking
/// the source for a fresh token (a new GetIdentityCenterAuthToken call) each time.
#[test]
fn single_use_tokens_fetch_a_fresh_one_for_every_connection() {
    let (aws, idp, _rt) = idc_fakes(10);
    idp.accept_once();
    let sb = Sandbox::new();
    let proxy = idc_proxy(&sb, &aws, &idp, CLUSTER);
    let conninfo = conninfo(&proxy);
    for _ in 0..4 {
        psql_is_the_idc_user(&conninfo, &proxy);
    }
    let accepted: Vec<String> = idp
        .seen()
        .into_iter()
        .filter(|s| s.accepted)
        .filter_map(|s| s.token)
        .collect();
    assert_eq!(accepted.len(), 4, "{accepted:?}");
    let mut distinct = accepted.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "each login had its own token: {accepted:?}"
    );
    let calls = aws.idc_calls().len();
    assert!(
        (4..=5).contains(&calls),
        "one call a connection (and one retry): {calls}"
    );
}

/// pgcli once and pgjdbc with three connections through `proxy`, each as the IdC user.
fn pgcli_and_pgjdbc_are_the_idc_user(proxy: &Proxy, home: &std::path::Path) {
    use super::clients::{pgcli_command, pgjdbc, pgjdbc_command};
    use crate::support::require_tool;
    let explain = |o: &std::process::Output| {
        format!(
            "{:?}\nstdout: {}\nstderr: {}\nproxy: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            proxy.stderr()
        )
    };
    let port = proxy.tcp().port();
    let query = "select current_user";
    let pgcli = require_tool("pgcli", "PGCLI").expect("pgcli is needed");
    let o = pgcli_command(pgcli, home, port, "dev", query)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.trim() == IDC_USER), "{}", explain(&o));
    let java = pgjdbc().expect("java and pgjdbc are needed");
    let url = format!("jdbc:postgresql://127.0.0.1:{port}/dev?sslmode=disable");
    let o = pgjdbc_command(java, home, &url, query, 3).output().unwrap();
    assert!(o.status.success(), "{}", explain(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [IDC_USER; 3],
        "{}",
        explain(&o)
    );
}

/// pgcli and pgjdbc with `--identity-center`: one GetIdentityCenterAuthToken for all.
#[test]
fn pgcli_and_pgjdbc_with_identity_center() {
    let (aws, idp, _rt) = idc_fakes(3);
    let sb = Sandbox::new();
    let proxy = idc_proxy(&sb, &aws, &idp, CLUSTER);
    pgcli_and_pgjdbc_are_the_idc_user(&proxy, sb.path());
    assert_eq!(aws.idc_calls().len(), 1, "one token for every connection");
    assert!(idp.seen().len() >= 4);
    assert!(idp.seen().iter().all(|s| s.accepted));
}

/// pgcli and pgjdbc with a browser sign-in: one sign-in for all.
#[test]
fn pgcli_and_pgjdbc_with_a_browser_sign_in() {
    let rig = SignInRig::start();
    let proxy = rig.proxy(Some(0), &[]);
    pgcli_and_pgjdbc_are_the_idc_user(&proxy, rig.sb.path());
    assert_eq!(rig.oidc.sign_ins(), 1, "one sign-in for every connection");
    assert!(rig.idp.seen().len() >= 4);
    rig.assert_access_token_logins();
}
