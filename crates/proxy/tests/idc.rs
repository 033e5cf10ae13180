//! IAM Identity Center token logins (Redshift's authentication request 14) end to end, against
//! the test kit's fake Redshift ([`redshift_idp`]): first the fake against the real
//! redshift_connector, so the fake is known to speak the drivers' layout, then psql and
//! tokio-postgres through the proxy with a token source: one token for many connections,
//! single-use tokens, and failures that reach the client as an ErrorResponse.

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redshift_creds_proxy::{Login, Options, PasswordSource, SourceError};
use redshift_creds_testkit::redshift_idp::{IdpServer, Issuer};
use secrecy::SecretString;
use support::{run_psql, start, target, text};

const IDC_USER: &str = "alice@example.com";

/// A token source over the fake's issuer: a cached token until a fresh one is asked for.
struct TokenSource {
    issuer: Issuer,
    /// How long new tokens live, in seconds.
    ttl: i64,
    cached: Mutex<Option<String>>,
    fail: Mutex<Option<SourceError>>,
    logins: AtomicUsize,
    fresh_logins: AtomicUsize,
}

impl TokenSource {
    fn new(issuer: Issuer) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            issuer,
            ttl: 3600,
            cached: Mutex::new(None),
            fail: Mutex::new(None),
            logins: AtomicUsize::new(0),
            fresh_logins: AtomicUsize::new(0),
        })
    }
    fn logins(&self) -> (usize, usize) {
        (
            self.logins.load(Ordering::SeqCst),
            self.fresh_logins.load(Ordering::SeqCst),
        )
    }
}

impl PasswordSource for TokenSource {
    fn login(&self, fresh: bool) -> Result<Login, SourceError> {
        support::count_login(fresh, &self.logins, &self.fresh_logins, &self.fail)?;
        let mut cached = self.cached.lock().unwrap();
        if fresh || cached.is_none() {
            *cached = Some(self.issuer.issue(IDC_USER, self.ttl));
        }
        let token = cached.clone().unwrap();
        Ok(Login::token(
            SecretString::from(token),
            "ACCESS_TOKEN",
            4_000_000_000,
        ))
    }
}

fn conninfo(p: &support::Running) -> String {
    let a = p.tcp();
    format!(
        "host={} port={} dbname=dev sslmode=disable user=ignored application_name=idctest",
        a.ip(),
        a.port()
    )
}

async fn pg_client(p: &support::Running) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&conninfo(p), tokio_postgres::NoTls)
        .await
        .expect("connect through the proxy");
    tokio::spawn(conn);
    client
}

/// The Python of the drivers venv (`$PYDRIVERS`, tests/run.sh's), or None (skipped loudly,
/// a failure under strict runs).
fn python() -> Option<std::path::PathBuf> {
    match std::env::var_os("PYDRIVERS") {
        Some(p) if std::path::Path::new(&p).is_file() => Some(p.into()),
        _ => {
            redshift_creds_testkit::skip_or_fail(
                "no Python with redshift_connector (set PYDRIVERS, see /work/test-env.sh or tests/run.sh)",
            );
            None
        }
    }
}

/// redshift_connector's IdpTokenAuthPlugin logs in to the fake directly, over verified TLS,
/// and runs a query: the fake reads the driver's startup and token message (which has no
/// trailing NUL) as Redshift does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redshift_connector_logs_in_to_the_fake_with_a_token() {
    let Some(python) = python() else { return };
    let fake = IdpServer::start().await;
    let token = fake.issuer().issue(IDC_USER, 3600);
    let script = "import redshift_connector, sys\n\
        c = redshift_connector.connect(credentials_provider='IdpTokenAuthPlugin',\n\
            token=sys.argv[2], token_type='ACCESS_TOKEN', host='127.0.0.1',\n\
            port=int(sys.argv[1]), database='dev', ssl=True, sslmode='verify-full')\n\
        cur = c.cursor()\n\
        cur.execute('select current_user')\n\
        print(cur.fetchone()[0])\n\
        c.close()\n";
    let o = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .args(["-c", script, &fake.port.to_string(), &token])
            // The driver loads the default trust store besides its Redshift bundle.
            .env("SSL_CERT_FILE", &fake.ca_cert)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("redshift_connector hung")
    .unwrap();
    assert!(
        o.status.success(),
        "redshift_connector: {}\n{}",
        text(&o.stderr),
        text(&o.stdout)
    );
    assert_eq!(text(&o.stdout), IDC_USER);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].accepted && !seen[0].nul, "{seen:?}");
    assert_eq!(seen[0].token.as_deref(), Some(token.as_str()));
    let get = |k: &str| {
        seen[0]
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("idp_type").as_deref(), Some("AwsIdc"));
    assert_eq!(get("token_type").as_deref(), Some("ACCESS_TOKEN"));
    assert!(
        get("plugin_name").is_some_and(|p| p.ends_with("IdpTokenAuthPlugin")),
        "{seen:?}"
    );
}

/// psql and tokio-postgres through the proxy log in as the Identity Center user the token
/// maps to; one token serves every connection; the proxy sends JDBC's layout (with the NUL),
/// no user, and the client's other parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_tokio_postgres_log_in_with_one_token() {
    support::init_logs();
    let fake = IdpServer::start().await;
    let source = TokenSource::new(fake.issuer());
    let p = start(
        vec![target(fake.port, &fake.ca_cert, source.clone(), None)],
        Options::default(),
    );
    for _ in 0..2 {
        let o = run_psql(&conninfo(&p), "select current_user", None).await;
        assert!(o.status.success(), "psql: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), IDC_USER);
    }
    for _ in 0..2 {
        let client = pg_client(&p).await;
        let row = client.query_one("select current_user", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), IDC_USER);
        let simple = client.simple_query("select current_user").await.unwrap();
        assert!(
            simple.iter().any(|m| matches!(m,
                tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some(IDC_USER))),
            "simple query"
        );
    }
    assert_eq!(source.logins(), (4, 0), "four cached logins, no fresh one");
    assert_eq!(fake.issuer().issued(), 1, "one token for every connection");
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert!(s.accepted && s.nul, "JDBC's layout: {s:?}");
        let names: Vec<&str> = s.params.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"user"), "no user: {names:?}");
        let get = |k: &str| {
            s.params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("database"), Some("dev"));
        assert_eq!(get("application_name"), Some("idctest"));
    }
}

/// A fake that takes each token once: every connection still gets in. After two refusals of
/// a token that had worked before, the proxy fetches a fresh token for each connection and
/// the server refuses no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_tokens_are_fetched_fresh_for_each_connection() {
    support::init_logs();
    let fake = IdpServer::start().await;
    fake.accept_once();
    let source = TokenSource::new(fake.issuer());
    let p = start(
        vec![target(fake.port, &fake.ca_cert, source.clone(), None)],
        Options::default(),
    );
    for i in 0..6 {
        let client = pg_client(&p).await;
        let row = client.query_one("select current_user", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), IDC_USER, "connection {i}");
    }
    assert_eq!(fake.counts(), (6, 2), "six in, two refusals, then none");
    // 1: cached (new); 2 and 3: cached, refused, fresh; 4-6: fresh at once.
    assert_eq!(source.logins(), (8, 5));
    assert_eq!(fake.issuer().issued(), 6);
}

/// A refused cached token (here: expired) is retried once with a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cached_token_is_replaced() {
    let fake = IdpServer::start().await;
    let source = TokenSource::new(fake.issuer());
    *source.cached.lock().unwrap() = Some(fake.issuer().issue(IDC_USER, -1));
    let p = start(
        vec![target(fake.port, &fake.ca_cert, source.clone(), None)],
        Options::default(),
    );
    let client = pg_client(&p).await;
    let row = client.query_one("select current_user", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), IDC_USER);
    assert_eq!(fake.counts(), (1, 1));
    assert_eq!(source.logins(), (2, 1));
}

/// A source that cannot sign in, and a token the server refuses even fresh: the client gets
/// an ErrorResponse with the reason, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sign_in_reaches_the_client_as_an_error() {
    let fake = IdpServer::start().await;
    let source = TokenSource::new(fake.issuer());
    *source.fail.lock().unwrap() = Some(SourceError {
        message: "IAM Identity Center sign-in failed: the refresh token has expired (test)".into(),
        sqlstate: "28000",
    });
    let p = start(
        vec![target(fake.port, &fake.ca_cert, source.clone(), None)],
        Options::default(),
    );
    let o = run_psql(&conninfo(&p), "select 1", None).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("redshift-creds: IAM Identity Center sign-in failed: the refresh token has expired (test)"),
        "{err}"
    );
    let e = tokio_postgres::connect(&conninfo(&p), tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "28000");
    assert!(db.message().contains("sign-in failed"), "{db:?}");
    assert!(fake.seen().is_empty(), "no login was attempted");

    // A source whose fresh tokens are already expired: refused twice, then the client hears why.
    *source.fail.lock().unwrap() = None;
    let expired = Arc::new(TokenSource {
        ttl: -1,
        ..Arc::into_inner(TokenSource::new(fake.issuer())).unwrap()
    });
    let p = start(
        vec![target(fake.port, &fake.ca_cert, expired.clone(), None)],
        Options::default(),
    );
    let o = run_psql(&conninfo(&p), "select 1", None).await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("the token has expired"), "{err}");
    assert_eq!(expired.logins(), (2, 1), "one retry with a fresh token");
}
