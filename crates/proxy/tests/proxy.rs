//! End-to-end tests of the proxy with real peers: PostgreSQL 15 over TLS (scram-sha-256,
//! md5, password), psql and tokio-postgres as clients, and fake upstreams for what a real
//! server cannot show (no TLS, Redshift's digest authentication).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redshift_creds_proxy::{Options, SourceError, SslMode, client_tls, upstream_tls};
use support::fake::{self, msg, read_msg};
use support::{FakeSource, Fronted, front, run_psql, start, target, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn conninfo_tcp(p: &support::Running, extra: &str) -> String {
    let a = p.tcp();
    format!(
        "host={} port={} dbname=postgres sslmode=disable user=anything {extra}",
        a.ip(),
        a.port()
    )
}

fn conninfo_unix(p: &support::Running) -> String {
    let sock = p.unix();
    let dir = sock.parent().unwrap().display().to_string();
    let port = sock.extension().unwrap().to_str().unwrap().to_owned();
    format!("host={dir} port={port} dbname=postgres user=anything")
}

/// psql through the proxy, over TCP and the Unix socket, against a server using `method`.
async fn psql_through(method: &'static str, role: &str) {
    support::init_logs();
    let dir = support::socket_dir();
    let sockdir = dir.path().join("s");
    let Fronted {
        source, proxy: p, ..
    } = front(role)
        .method(method)
        .password("pw-one")
        .unix(&sockdir)
        .start();
    // The socket is named after the TCP port.
    assert_eq!(
        p.unix(),
        sockdir.join(format!(".s.PGSQL.{}", p.tcp().port()))
    );
    assert_eq!(
        std::fs::metadata(&sockdir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for info in [conninfo_tcp(&p, ""), conninfo_unix(&p)] {
        let o = run_psql(&info, "select current_user", None).await;
        assert!(o.status.success(), "{info}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), role);
    }
    assert_eq!(source.logins(), 2);
    assert_eq!(source.fresh_logins(), 0);
    assert_eq!(
        source.refreshes.load(Ordering::SeqCst),
        2,
        "refresh_ahead on every session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_scram() {
    psql_through("scram-sha-256", "r_scram").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_md5() {
    psql_through("md5", "r_md5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_password() {
    psql_through("password", "r_cleartext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_without_tls_gets_nothing() {
    let (port, after) = fake::no_tls_server().await;
    let t = tempfile::tempdir().unwrap();
    let (_, ca) = client_tls(&t.path().join("tls")).unwrap();
    let source = FakeSource::new("u", "secret-password");
    let p = start(vec![target(port, &ca, source, None)], Options::default());
    let o = run_psql(&conninfo_tcp(&p, ""), "select 1", None).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("does not offer TLS"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(6);
    let got = loop {
        if let Some(b) = after.lock().unwrap().clone() {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the fake server never saw the connection end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        got.is_empty(),
        "bytes sent after the server refused TLS: {got:?}"
    );
}

/// A TLS fake upstream that asks for `auth` and checks the answer with `check`.
async fn fake_tls_upstream(
    dir: &std::path::Path,
    handle: impl FnOnce(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        Vec<(String, String)>,
    ) -> tokio::task::JoinHandle<()>
    + Send
    + 'static,
) -> (u16, std::path::PathBuf) {
    let (config, ca) = client_tls(dir).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = [0u8; 8];
        s.read_exact(&mut req).await.unwrap();
        s.write_all(b"S").await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(s)
            .await
            .unwrap();
        let len = tls.read_i32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        tls.read_exact(&mut body).await.unwrap();
        handle(tls, fake::startup_params(&body)).await.unwrap();
    });
    (port, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_digest_login() {
    support::init_logs();
    let t = tempfile::tempdir().unwrap();
    let checked = Arc::new(std::sync::Mutex::new(None::<(bool, Vec<(String, String)>)>));
    let out = checked.clone();
    let (port, ca) = fake_tls_upstream(&t.path().join("tls"), move |mut tls, params| {
        tokio::spawn(async move {
            let mut req = Vec::new();
            req.extend_from_slice(&13i32.to_be_bytes());
            req.extend_from_slice(&0i32.to_be_bytes());
            req.extend_from_slice(&5i32.to_be_bytes());
            req.extend_from_slice(b"salt5");
            req.extend_from_slice(&6i32.to_be_bytes());
            req.extend_from_slice(b"nonce6");
            tls.write_all(&msg(b'R', &req)).await.unwrap();
            let (tag, body) = read_msg(&mut tls).await;
            assert_eq!(tag, b'd');
            let dlen = i32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
            let digest = &body[4..4 + dlen];
            let nlen = i32::from_be_bytes(body[4 + dlen..8 + dlen].try_into().unwrap()) as usize;
            let client_nonce = &body[8 + dlen..8 + dlen + nlen];
            use sha2::Digest;
            let inner = sha2::Sha256::new()
                .chain_update(b"digest-pw")
                .chain_update(b"salt5")
                .finalize();
            let want = sha2::Sha256::new()
                .chain_update(inner)
                .chain_update(b"nonce6")
                .chain_update(client_nonce)
                .finalize();
            let ok = digest == &want[..] && client_nonce.iter().all(u8::is_ascii_digit);
            *out.lock().unwrap() = Some((ok, params));
            if !ok {
                tls.write_all(&msg(b'E', b"SFATAL\0C28P01\0Mbad digest\0\0"))
                    .await
                    .unwrap();
                return;
            }
            fake::serve_queries(&mut tls, "digest-ok").await;
        })
    })
    .await;
    let source = FakeSource::new("IAM:alice", "digest-pw");
    let p = start(vec![target(port, &ca, source, None)], Options::default());
    let info =
        conninfo_tcp(&p, "application_name=digesttest").replace("dbname=postgres", "dbname=dev");
    let o = run_psql(&info, "select 1", None).await;
    let (ok, params) = checked
        .lock()
        .unwrap()
        .clone()
        .expect("the fake saw a login");
    assert!(ok, "the digest did not verify");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "digest-ok");
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("user"), Some("IAM:alice"));
    assert_eq!(get("database"), Some("dev"));
    assert_eq!(get("application_name"), Some("digesttest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_auth_code_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (port, ca) = fake_tls_upstream(&t.path().join("tls"), |mut tls, _| {
        tokio::spawn(async move {
            tls.write_all(&msg(b'R', &7i32.to_be_bytes()))
                .await
                .unwrap();
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
        })
    })
    .await;
    let p = start(
        vec![target(port, &ca, FakeSource::new("u", "p"), None)],
        Options::default(),
    );
    let o = run_psql(&conninfo_tcp(&p, ""), "select 1", None).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("authentication method 7"), "{err}");
}

async fn pg_client(p: &support::Running) -> tokio_postgres::Client {
    let a = p.tcp();
    let cfg = format!(
        "host={} port={} user=anything dbname=postgres",
        a.ip(),
        a.port()
    );
    let (client, conn) = tokio_postgres::connect(&cfg, tokio_postgres::NoTls)
        .await
        .expect("connect through the proxy");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_server() {
    let p = front("r_cancel").start().proxy;
    let client = pg_client(&p).await;
    let token = client.cancel_token();
    let mut query = tokio::spawn(async move { client.simple_query("select pg_sleep(60)").await });
    // A cancel that arrives before the query has reached the server cancels nothing, so on a
    // loaded machine one is sent every half second until the query ends; well before the
    // sleep would end by itself (a bound, not a speed goal).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let r = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), &mut query).await {
            Ok(done) => break done.unwrap(),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "cancelled, not slept out"
            ),
        }
    };
    let e = r.expect_err("the query was cancelled");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_rejected_cache() {
    let Fronted {
        pg,
        source,
        proxy: p,
    } = front("r_rot").password("one").start();
    let before = pg_client(&p).await;
    before.simple_query("select 1").await.unwrap();

    pg.superuser_sql("ALTER ROLE r_rot PASSWORD 'two'");
    *source.password.lock().unwrap() = "two".into();
    let after = pg_client(&p).await;
    after.simple_query("select 1").await.unwrap();
    let rows = before
        .query_one("select current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(
        rows.get::<_, String>(0),
        "r_rot",
        "the session opened before keeps working"
    );
    assert_eq!(source.logins(), 2);
    assert_eq!(source.fresh_logins(), 0);

    // The cache still holds "two" after the password moved on: rejected, then fresh.
    pg.superuser_sql("ALTER ROLE r_rot PASSWORD 'three'");
    *source.stale.lock().unwrap() = Some("two".into());
    *source.password.lock().unwrap() = "three".into();
    let third = pg_client(&p).await;
    third.simple_query("select 1").await.unwrap();
    assert_eq!(source.fresh_logins(), 1, "login(true) after the rejection");
    assert_eq!(source.logins(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_at_once() {
    let Fronted {
        source, proxy: p, ..
    } = front("r_many").method("password").start();
    let a = p.tcp();
    let started = Instant::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let cfg = format!(
                "host={} port={} user=x dbname=postgres connect_timeout=60",
                a.ip(),
                a.port()
            );
            let (client, conn) = tokio_postgres::connect(&cfg, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let row = client.query_one("select 1::int4", &[]).await?;
            // Everyone holds the connection until all 200 are in.
            b.wait().await;
            Ok::<i32, tokio_postgres::Error>(row.get(0))
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 1);
    }
    assert_eq!(source.logins(), 200);
    eprintln!(
        "200 concurrent sessions through the proxy in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_source_then_recovery() {
    let Fronted {
        source, proxy: p, ..
    } = front("r_fail").start();
    *source.fail.lock().unwrap() = Some(SourceError {
        message: "no AWS credentials (test)".into(),
        sqlstate: "08001",
    });
    let o = run_psql(&conninfo_tcp(&p, ""), "select 1", None).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("redshift-creds: no AWS credentials (test)"),
        "{err}"
    );
    *source.fail.lock().unwrap() = None;
    let o = run_psql(&conninfo_tcp(&p, ""), "select current_user", None).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "r_fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_scope_is_enforced() {
    let p = front("r_scope").db_name("postgres").start().proxy;
    let o = run_psql(
        &conninfo_tcp(&p, "").replace("dbname=postgres", "dbname=other"),
        "select 1",
        None,
    )
    .await;
    let err = text(&o.stderr);
    assert!(
        err.contains("only works for database \"postgres\""),
        "{err}"
    );
    let o = run_psql(&conninfo_tcp(&p, ""), "select current_database()", None).await;
    assert_eq!(text(&o.stdout), "postgres", "{}", text(&o.stderr));
}

/// The OS user `rcproxytest`, created if missing; its uid.
fn other_user() -> u32 {
    let exists = std::process::Command::new("id")
        .args(["-u", "rcproxytest"])
        .output()
        .unwrap();
    if !exists.status.success() {
        let o = std::process::Command::new("useradd")
            .args(["-M", "rcproxytest"])
            .output()
            .unwrap();
        assert!(
            o.status.success() || text(&o.stderr).contains("already exists"),
            "useradd: {}",
            text(&o.stderr)
        );
    }
    let o = std::process::Command::new("id")
        .args(["-u", "rcproxytest"])
        .output()
        .unwrap();
    text(&o.stdout).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_are_refused() {
    let uid = other_user();
    let dir = support::socket_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let sockdir = dir.path().join("s");
    let Fronted {
        source, proxy: p, ..
    } = front("r_peer").unix(&sockdir).start();

    // TCP from another uid: the proxy finds its uid in /proc/net/tcp and refuses.
    let o = run_psql(&conninfo_tcp(&p, ""), "select 1", Some("rcproxytest")).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("uid {uid} may not use this proxy")),
        "{err}"
    );
    // The Unix socket's directory is 0700: the other user cannot even reach the socket.
    let o = run_psql(&conninfo_unix(&p), "select 1", Some("rcproxytest")).await;
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        source.logins(),
        0,
        "no password was fetched for a refused peer"
    );
    drop(p);

    // SO_PEERCRED: a proxy that allows only another uid refuses us (root) on the socket.
    let opts = Options {
        allowed_uids: vec![uid],
        ..Options::default()
    };
    let sockdir2 = dir.path().join("s2");
    let p = front("r_peer")
        .unix(&sockdir2)
        .options(opts)
        .source(source.clone())
        .start()
        .proxy;
    for info in [conninfo_unix(&p), conninfo_tcp(&p, "")] {
        let o = run_psql(&info, "select 1", None).await;
        assert!(!o.status.success());
        let err = text(&o.stderr);
        assert!(
            err.contains("uid 0 may not use this proxy"),
            "{info}: {err}"
        );
    }
    assert_eq!(source.logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_sessions_then_times_out() {
    let with_timeout = |shutdown_timeout| {
        let opts = Options {
            shutdown_timeout,
            ..Options::default()
        };
        front("r_shut").options(opts).start().proxy
    };
    let mut p = with_timeout(Duration::from_secs(20));
    let client = pg_client(&p).await;
    let addr = p.tcp();
    p.shutdown();
    let mut task = p.task.take().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut task)
            .await
            .is_err(),
        "waits for the open session"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    client
        .simple_query("select 1")
        .await
        .expect("the open session still works");
    drop(client);
    let r = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("returns once the session ends");
    r.unwrap().unwrap();

    let mut p = with_timeout(Duration::from_millis(300));
    let client = pg_client(&p).await;
    let started = Instant::now();
    p.shutdown();
    let task = p.task.take().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("returns after the timeout");
    r.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        client.simple_query("select 1").await.is_err(),
        "the session was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_with_psql() {
    let t = tempfile::tempdir().unwrap();
    let tls_dir = t.path().join("client-tls");
    let (config, ca) = client_tls(&tls_dir).unwrap();
    assert_eq!(
        std::fs::metadata(&tls_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(ca.parent().unwrap(), tls_dir);
    let opts = Options {
        client_tls: Some(config),
        ..Options::default()
    };
    let p = front("r_tls").options(opts).start().proxy;
    let base = conninfo_tcp(&p, "");
    let verify = base.replace(
        "sslmode=disable",
        &format!("sslmode=verify-full sslrootcert={}", ca.display()),
    );
    for info in [base.replace("sslmode=disable", "sslmode=require"), verify] {
        let o = run_psql(
            &info,
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            None,
        )
        .await;
        assert!(o.status.success(), "{info}: {}", text(&o.stderr));
        // The upstream leg is TLS too.
        assert_eq!(text(&o.stdout), "t");
    }
    let _ = upstream_tls(SslMode::Require, None).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_requests_are_declined_and_unknown_cancels_dropped() {
    let Fronted {
        source, proxy: p, ..
    } = front("r_raw").start();
    let mut s = tokio::net::TcpStream::connect(p.tcp()).await.unwrap();
    // GSSENCRequest, then SSLRequest: both `N` without client TLS.
    for code in [80_877_104i32, 80_877_103] {
        let mut req = 8i32.to_be_bytes().to_vec();
        req.extend_from_slice(&code.to_be_bytes());
        s.write_all(&req).await.unwrap();
        assert_eq!(s.read_u8().await.unwrap(), b'N');
    }
    let mut startup = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "x"), ("database", "postgres")],
        &mut startup,
    )
    .unwrap();
    s.write_all(&startup).await.unwrap();
    // The proxy never asks the client for a password: AuthenticationOk comes first.
    let (tag, body) = read_msg(&mut s).await;
    assert_eq!((tag, body), (b'R', vec![0, 0, 0, 0]));
    loop {
        if read_msg(&mut s).await.0 == b'Z' {
            break;
        }
    }
    // A CancelRequest with a key no session has: closed, nothing sent, the session lives on.
    let mut c = tokio::net::TcpStream::connect(p.tcp()).await.unwrap();
    let mut cancel = bytes::BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(1, 2, &mut cancel);
    c.write_all(&cancel).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    let mut q = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query("select 1", &mut q).unwrap();
    s.write_all(&q).await.unwrap();
    assert_eq!(read_msg(&mut s).await.0, b'T');
    assert_eq!(source.logins(), 1);
}
