//! The upstream half of a session: checking what the client asked for, logging in with a
//! password or an Identity Center token (once more with a forced one when the server refuses
//! it), and handing the logged-in connection over to the client up to ReadyForQuery.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::auth::{LoginError, authenticate};
use crate::cancel::Registration;
use crate::ctx::{Client, Shared, TargetCtx, logged};
use crate::dial::UpstreamConn;
use crate::error::SessionError;
use crate::source::{Login, LoginSecret};
use crate::upstream::Upstream;
use crate::wire::{self, ServerMessage};
use crate::wire_io;

/// What the client asked for, once checked.
pub(crate) struct Request {
    pub database: String,
    /// Startup parameters passed through (without user and database, and without the
    /// parameters that choose the login method, which are the proxy's to set).
    params: Vec<(String, String)>,
    /// `_pq_.` options we do not support, or None when the client needs no
    /// NegotiateProtocolVersion (it asked for 3.0 and no options).
    negotiate: Option<Vec<String>>,
}

/// Checks the client's startup parameters against the target.
pub(crate) fn request(
    version: i32,
    params: Vec<(String, String)>,
    up: &Upstream,
) -> Result<Request, SessionError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let database = get("database")
        .filter(|d| !d.is_empty())
        .or_else(|| up.db_name.clone())
        .or_else(|| get("user"))
        .unwrap_or_default();
    if let Some(allowed) = &up.db_name
        && *allowed != database
    {
        return Err(SessionError::new(
            "3D000",
            format!(
                "the password only works for database {allowed:?}; the client asked for {database:?}"
            ),
        ));
    }
    let unsupported: Vec<String> = params
        .iter()
        .filter(|(n, _)| n.starts_with("_pq_."))
        .map(|(n, _)| n.clone())
        .collect();
    let negotiate =
        (version != wire::PROTOCOL_3_0 || !unsupported.is_empty()).then_some(unsupported);
    let params = params
        .into_iter()
        .filter(|(n, _)| {
            !matches!(n.as_str(), "user" | "database" | "idp_type" | "token_type")
                && !n.starts_with("_pq_.")
        })
        .collect();
    Ok(Request {
        database,
        params,
        negotiate,
    })
}

/// A new upstream connection and a login for it, the login fetched while the connection is
/// being opened.
async fn connect(
    target: &TargetCtx,
    shared: &Shared,
    fresh: bool,
) -> Result<(UpstreamConn, Login), SessionError> {
    let source = target.source.clone();
    let fetch = tokio::task::spawn_blocking(move || {
        if !fresh {
            source.refresh_ahead();
        }
        source.login(fresh)
    });
    let (conn, login) = tokio::join!(shared.dial.dial(&target.upstream), fetch);
    let login = login
        .map_err(|e| SessionError::connect(format!("password source failed: {e}")))?
        .map_err(|e| SessionError::new(e.sqlstate, e.message))?;
    target
        .expiry
        .store(login.expiration, std::sync::atomic::Ordering::Relaxed);
    Ok((conn?, login))
}

/// The StartupMessage for `login`. A password login names its database user; a token
/// login names none (the server maps the token to its user) and asks for Redshift's token
/// login instead, with `idp_type = AwsIdc` and the token's type, as the drivers do for
/// their IdpTokenAuthPlugin: aws/amazon-redshift-jdbc-driver
/// src/main/java/com/amazon/redshift/core/v3/ConnectionFactoryImpl.java (commit de46a927) lines 394-399 (the
/// plugin sets `idpType = "AwsIdc"`, line 88, and `tokenType`), 409-413 (no `user` unless
/// one was given) and 476-492 (`idp_type`, `token_type`); aws/amazon-redshift-python-driver
/// redshift_connector/core.py (commit d2c7524a) lines 2596 and 2606-2607.
pub(crate) fn startup_message(login: &Login, req: &Request) -> Result<BytesMut, SessionError> {
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(req.params.len() + 3);
    match &login.secret {
        LoginSecret::Password { user, .. } => {
            params.extend([("user", user.as_str()), ("database", &req.database)]);
        }
        LoginSecret::Token { token_type, .. } => params.extend([
            ("database", req.database.as_str()),
            ("idp_type", "AwsIdc"),
            ("token_type", token_type),
        ]),
    }
    params.extend(req.params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut startup = BytesMut::new();
    postgres_protocol::message::frontend::startup_message(params, &mut startup)
        .map_err(|e| SessionError::protocol(format!("startup parameters: {e}")))?;
    Ok(startup)
}

/// Sends the StartupMessage and answers the server until AuthenticationOk.
async fn log_in(conn: &mut UpstreamConn, login: &Login, req: &Request) -> Result<(), LoginError> {
    let startup = startup_message(login, req)?;
    conn.write_all(&startup)
        .await
        .map_err(|e| SessionError::connect(format!("upstream connection lost: {e}")))?;
    authenticate(conn, login).await
}

/// Logs in upstream; when the server rejects the cached password or token, once more with a
/// fresh one. Once a target's tokens have proved single-use (see [`crate::reuse`]), every
/// connection starts with a fresh one.
pub(crate) async fn login(
    target: &TargetCtx,
    shared: &Shared,
    req: &Request,
) -> Result<(UpstreamConn, Login), SessionError> {
    let fresh = target.reuse.single_use();
    let (mut conn, login) = connect(target, shared, fresh).await?;
    let error = match log_in(&mut conn, &login, req).await {
        Ok(()) => {
            target.reuse.accepted(&login);
            return Ok((conn, login));
        }
        Err(LoginError::Failed(e)) => return Err(e),
        Err(LoginError::Rejected(e)) if fresh => return Err(e),
        Err(LoginError::Rejected(e)) => e.to_string(),
    };
    tracing::info!(target = %target.name, error = %logged(&error), "cached login rejected; retrying with a fresh one");
    if target.reuse.refused(&login) {
        tracing::info!(target = %target.name, "tokens are refused after one use: every connection now fetches a fresh token");
    }
    drop(conn);
    let (mut conn, login) = connect(target, shared, true).await?;
    match log_in(&mut conn, &login, req).await {
        Ok(()) => {
            target.reuse.accepted(&login);
            Ok((conn, login))
        }
        Err(LoginError::Failed(e) | LoginError::Rejected(e)) => Err(e),
    }
}

/// What the server said between AuthenticationOk and ReadyForQuery.
pub(crate) struct Ready {
    pub backend_pid: Option<i32>,
    _cancel: Option<Registration>,
}

/// Forwards AuthenticationOk and then the server's messages up to ReadyForQuery, recording
/// BackendKeyData for cancellation. The client gets the real pid and key.
pub(crate) async fn hand_over(
    client: &mut Client,
    up: &mut UpstreamConn,
    req: &Request,
    target: &TargetCtx,
    shared: &Shared,
) -> Result<Ready, SessionError> {
    let mut out = BytesMut::new();
    if let Some(unsupported) = &req.negotiate {
        out.extend_from_slice(&wire::negotiate_protocol_version(unsupported));
    }
    out.extend_from_slice(&wire::authentication_ok());
    let mut ready = Ready {
        backend_pid: None,
        _cancel: None,
    };
    loop {
        let frame = wire_io::read_frame(up).await.map_err(|e| {
            SessionError::connect(format!("upstream connection lost after login: {e}"))
        })?;
        out.extend_from_slice(&frame.bytes);
        if let Ok(ServerMessage::BackendKeyData { pid, key }) = wire::decode(&frame) {
            ready.backend_pid = Some(pid);
            ready._cancel = Some(shared.cancels.register(pid, key, target.upstream.clone()));
        }
        if matches!(frame.tag, b'Z' | b'E') {
            break;
        }
    }
    let _ = client.write_all(&out).await;
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::ExposeSecret;
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::ctx::fixtures::{Passwords, shared, target};
    use crate::dial::fake::{FakeDial, FakeServer};

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The upstream request of a protocol 3.0 client that names only the user `me`.
    fn me_request(target: &TargetCtx) -> Request {
        request(
            wire::PROTOCOL_3_0,
            params(&[("user", "me")]),
            &target.upstream,
        )
        .unwrap()
    }

    #[test]
    fn checks_the_database_and_strips_what_the_proxy_sets() {
        let up = target(Some("dev"), Arc::default()).upstream;
        let e = request(
            wire::PROTOCOL_3_0,
            params(&[("user", "me"), ("database", "prod")]),
            &up,
        )
        .err()
        .unwrap();
        assert_eq!(e.sqlstate, "3D000");
        let r = request(
            wire::PROTOCOL_3_0,
            params(&[("user", "me"), ("application_name", "x")]),
            &up,
        )
        .unwrap();
        assert_eq!(r.database, "dev", "the scoped database is the default");
        assert_eq!(r.params, params(&[("application_name", "x")]));
        assert_eq!(r.negotiate, None);
        let open = target(None, Arc::default()).upstream;
        let r = request(196_609, params(&[("user", "me"), ("_pq_.x", "1")]), &open).unwrap();
        assert_eq!(r.database, "me", "libpq's default: the user name");
        assert_eq!(r.params, Vec::new());
        assert_eq!(r.negotiate, Some(vec!["_pq_.x".to_owned()]));
    }

    /// The parameters of a StartupMessage, in order.
    fn startup_params(m: &[u8]) -> Vec<(String, String)> {
        assert_eq!(
            usize::try_from(i32::from_be_bytes(m[..4].try_into().unwrap())).unwrap(),
            m.len()
        );
        assert_eq!(&m[4..8], &wire::PROTOCOL_3_0.to_be_bytes());
        let fields: Vec<&[u8]> = m[8..m.len() - 2].split(|&b| b == 0).collect();
        fields
            .chunks(2)
            .map(|c| {
                (
                    String::from_utf8_lossy(c[0]).into_owned(),
                    String::from_utf8_lossy(c[1]).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_token_login_names_no_user_but_the_idp_type_and_token_type() {
        let up = target(None, Arc::default()).upstream;
        let req = request(
            wire::PROTOCOL_3_0,
            params(&[
                ("user", "whoever"),
                ("database", "dev"),
                ("application_name", "app"),
                ("idp_type", "AzureAD"),
                ("token_type", "EXT_JWT"),
            ]),
            &up,
        )
        .unwrap();
        let token = Login::token("s3cret-token".into(), "ACCESS_TOKEN", 0);
        let m = startup_message(&token, &req).unwrap();
        assert_eq!(
            startup_params(&m),
            params(&[
                ("database", "dev"),
                ("idp_type", "AwsIdc"),
                ("token_type", "ACCESS_TOKEN"),
                ("application_name", "app"),
            ]),
            "no user, the client's own idp_type and token_type dropped"
        );
        assert!(
            !String::from_utf8_lossy(&m).contains("s3cret"),
            "the token is not in the startup"
        );
        let password = Login::password("IAM:alice", "pw".into(), 0);
        assert_eq!(
            startup_params(&startup_message(&password, &req).unwrap()),
            params(&[
                ("user", "IAM:alice"),
                ("database", "dev"),
                ("application_name", "app"),
            ])
        );
    }

    /// Plays a server that asks for a cleartext password, checks it is `want` and then
    /// ends the login with `end` (an ErrorResponse body, or None for AuthenticationOk).
    async fn cleartext(server: &mut FakeServer, want: &str, end: Option<&[u8]>) {
        server.startup().await;
        server.send(b'R', &3i32.to_be_bytes()).await;
        let (tag, body) = server.recv().await;
        assert_eq!((tag, body), (b'p', format!("{want}\0").into_bytes()));
        match end {
            Some(error) => server.send(b'E', error).await,
            None => server.send(b'R', &0i32.to_be_bytes()).await,
        }
    }

    #[tokio::test]
    async fn retries_once_with_a_fresh_password_after_a_refusal() {
        let dial = Arc::new(FakeDial::default());
        let (mut first, mut second) = (dial.queue(), dial.queue());
        let source = Arc::new(Passwords::default());
        let (target, shared) = (target(None, source.clone()), shared(dial.clone()));
        let req = me_request(&target);
        let script = async {
            cleartext(
                &mut first,
                "old",
                Some(b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"),
            )
            .await;
            cleartext(&mut second, "new", None).await;
        };
        let (logged_in, ()) = tokio::join!(login(&target, &shared, &req), script);
        let (_, login) = logged_in.unwrap();
        let LoginSecret::Password { password, .. } = &login.secret else {
            panic!("a password login")
        };
        assert_eq!(password.expose_secret(), "new");
        assert_eq!(*source.0.lock().unwrap(), [false, true]);
        assert_eq!(dial.dials(), 2);
    }

    #[tokio::test]
    async fn a_refusal_for_another_reason_is_not_retried() {
        let dial = Arc::new(FakeDial::default());
        let (mut first, _second) = (dial.queue(), dial.queue());
        let source = Arc::new(Passwords::default());
        let (target, shared) = (target(None, source.clone()), shared(dial.clone()));
        let req = me_request(&target);
        let script = cleartext(
            &mut first,
            "old",
            Some(b"C28000\0Mno pg_hba.conf entry\0\0"),
        );
        let (logged_in, ()) = tokio::join!(login(&target, &shared, &req), script);
        let e = logged_in.err().unwrap();
        assert_eq!(e.sqlstate, "28000");
        assert!(e.message.contains("no pg_hba.conf entry"), "{e}");
        assert_eq!(*source.0.lock().unwrap(), [false]);
        assert_eq!(dial.dials(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let dial = Arc::new(FakeDial::default());
        let (target, shared) = (target(None, Arc::default()), shared(dial.clone()));
        let req = me_request(&target);
        let e = login(&target, &shared, &req).await.err().unwrap();
        assert_eq!(e.sqlstate, "08001");
        assert_eq!(dial.dials(), 1);
    }

    #[tokio::test]
    async fn hand_over_negotiates_and_forwards_up_to_ready() {
        let dial = Arc::new(FakeDial::default());
        let (target, shared) = (target(None, Arc::default()), shared(dial));
        let req = request(
            wire::PROTOCOL_3_0,
            params(&[("user", "me"), ("_pq_.x", "1")]),
            &target.upstream,
        )
        .unwrap();
        let (ours, theirs) = tokio::io::duplex(4096);
        let mut server = FakeServer(theirs);
        let mut up: UpstreamConn = Box::new(ours);
        let (client, mut app) = tokio::io::duplex(4096);
        let mut client: Client = Box::new(client);
        server.send(b'S', b"server_version\x0016\0").await;
        server.send(b'K', &[0, 0, 0, 7, 0, 0, 0, 9]).await;
        server.send(b'Z', b"I").await;
        server.send(b'T', b"not yet").await;
        let ready = hand_over(&mut client, &mut up, &req, &target, &shared)
            .await
            .unwrap();
        assert_eq!(ready.backend_pid, Some(7));
        assert!(shared.cancels.knows(7, 9));
        drop(client);
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        let mut want = wire::negotiate_protocol_version(&["_pq_.x".into()]).to_vec();
        want.extend_from_slice(&wire::authentication_ok());
        want.extend_from_slice(b"S\0\0\0\x16server_version\x0016\0");
        want.extend_from_slice(b"K\0\0\0\x0c\0\0\0\x07\0\0\0\x09");
        want.extend_from_slice(b"Z\0\0\0\x05I");
        assert_eq!(got, want, "only messages up to ReadyForQuery, as sent");
        drop(ready);
        assert!(!shared.cancels.knows(7, 9));
    }
}
