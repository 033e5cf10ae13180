//! A fake Redshift server for IAM Identity Center token logins (authentication request 14):
//! TLS only, it checks the startup (`idp_type = AwsIdc`, a `token_type`, no `user`), asks
//! for the token, checks it against the tokens it issued (known, not expired, and in
//! [`IdpServer::accept_once`] mode not used before), and then answers simple and extended
//! queries with one row naming the Identity Center user the token maps to.
//!
//! The token message it reads is `i`, Int32 length, the token, and an optional NUL: the JDBC
//! driver sends the NUL (ConnectionFactoryImpl.java, `case AUTH_REQ_IDP`), redshift_connector
//! does not (core.py, `auth_code == 14`). Both are accepted, and [`Seen::nul`] says which came.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SSL_REQUEST: i32 = 80_877_103;
const PROTOCOL_3_0: i32 = 196_608;

/// What the fake saw of one login attempt.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The startup parameters, in order.
    pub params: Vec<(String, String)>,
    /// The token received, if the login got that far.
    pub token: Option<String>,
    /// Whether the token message ended with a NUL (JDBC's layout).
    pub nul: bool,
    /// Whether the login succeeded.
    pub accepted: bool,
    /// Why it was refused, if it was.
    pub refusal: Option<String>,
}

#[derive(Default)]
struct State {
    /// token → (Identity Center user, expiry in Unix seconds).
    tokens: HashMap<String, (String, i64)>,
    used: HashSet<String>,
    accept_once: bool,
    issued: u64,
    seen: Vec<Seen>,
}

/// Issues tokens the fake accepts; cloneable, for a test's token source.
#[derive(Clone)]
pub struct Issuer(Arc<Mutex<State>>);

impl Issuer {
    /// A new token for `user`, valid for `ttl` seconds from now (negative: already expired).
    pub fn issue(&self, user: &str, ttl: i64) -> String {
        let mut s = self.0.lock().unwrap();
        s.issued += 1;
        let token = format!(
            "idc-token-{}-{:x}",
            s.issued,
            now().wrapping_mul(2_654_435_761)
        );
        s.tokens
            .insert(token.clone(), (user.to_owned(), now() + ttl));
        token
    }

    /// Accepts `token`, issued by someone else (the fake AWS's GetIdentityCenterAuthToken),
    /// as `user`'s for `ttl` seconds from now.
    pub fn accept(&self, token: &str, user: &str, ttl: i64) {
        let mut s = self.0.lock().unwrap();
        s.tokens
            .insert(token.to_owned(), (user.to_owned(), now() + ttl));
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> u64 {
        self.0.lock().unwrap().issued
    }
}

/// A running fake; dropped = stopped.
pub struct IdpServer {
    pub port: u16,
    /// The CA that signed the server's certificate (for `localhost` and `127.0.0.1`).
    pub ca_cert: PathBuf,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for IdpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl IdpServer {
    /// Starts the fake on 127.0.0.1 on the current runtime; tokens are reusable until they expire.
    pub async fn start() -> IdpServer {
        let dir = tempfile::tempdir().unwrap();
        let (config, ca_cert) = tls_config(&dir);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(s, acceptor.clone(), shared.clone()));
            }
        });
        IdpServer {
            port,
            ca_cert,
            state,
            task,
            _dir: dir,
        }
    }

    /// Starts the fake on a runtime of its own, for tests that have none; the runtime lives
    /// as long as the returned value.
    pub fn start_blocking() -> (IdpServer, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(IdpServer::start());
        (server, rt)
    }

    /// From now on each token is accepted once only (single-use tokens).
    pub fn accept_once(&self) {
        self.state.lock().unwrap().accept_once = true;
    }

    /// The issuer of tokens this fake accepts.
    pub fn issuer(&self) -> Issuer {
        Issuer(self.state.clone())
    }

    /// Every login attempt so far (connections that sent a startup).
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// How many logins were accepted and how many refused.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        let ok = s.seen.iter().filter(|l| l.accepted).count();
        let refused = s.seen.iter().filter(|l| l.refusal.is_some()).count();
        (ok, refused)
    }
}

/// A CA and a server certificate for localhost/127.0.0.1 signed by it; the CA in `dir`.
fn tls_config(dir: &tempfile::TempDir) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "fake Redshift IdC test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    (Arc::new(config), ca_path)
}

/// One message: tag, Int32 length counting itself, body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn error(code: &str, msg: &str) -> Vec<u8> {
    message(b'E', format!("SFATAL\0C{code}\0M{msg}\0\0").as_bytes())
}

async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<(u8, Vec<u8>)> {
    let tag = s.read_u8().await?;
    let len = usize::try_from(s.read_i32().await?).unwrap_or(0);
    if !(4..=1 << 20).contains(&len) {
        return Err(std::io::Error::other("bad message length"));
    }
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// The startup parameters of a StartupMessage body (after the protocol version).
pub fn startup_params(body: &[u8]) -> Vec<(String, String)> {
    let parts: Vec<String> = body
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    parts
        .chunks(2)
        .take_while(|c| c.len() == 2 && !c[0].is_empty())
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

/// What is wrong with the startup, if anything.
fn check_startup(params: &[(String, String)]) -> Option<String> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("idp_type") != Some("AwsIdc") {
        return Some(format!(
            "idp_type must be AwsIdc, not {:?}",
            get("idp_type")
        ));
    }
    if get("token_type").is_none_or(str::is_empty) {
        return Some("no token_type".to_owned());
    }
    // redshift_connector sends an empty user for a token login; a named one is a mistake.
    if get("user").is_some_and(|u| !u.is_empty()) {
        return Some(format!(
            "a token login names no user; got {:?}",
            get("user")
        ));
    }
    if get("database").is_none_or(str::is_empty) {
        return Some("no database".to_owned());
    }
    None
}

/// Checks a token; on success, the Identity Center user it maps to.
fn check_token(state: &Mutex<State>, token: &str) -> Result<String, String> {
    let mut s = state.lock().unwrap();
    let Some((user, expires)) = s.tokens.get(token).cloned() else {
        return Err("the token is not valid".to_owned());
    };
    if expires <= now() {
        return Err("the token has expired".to_owned());
    }
    if s.accept_once && !s.used.insert(token.to_owned()) {
        return Err("the token has already been used".to_owned());
    }
    Ok(user)
}

async fn serve(tcp: TcpStream, acceptor: tokio_rustls::TlsAcceptor, state: Arc<Mutex<State>>) {
    let mut tcp = tcp;
    let mut first = [0u8; 8];
    if tcp.read_exact(&mut first).await.is_err() {
        return;
    }
    if first[..4] != 8i32.to_be_bytes() || first[4..] != SSL_REQUEST.to_be_bytes() {
        let _ = tcp
            .write_all(&error("28000", "the fake Redshift requires TLS"))
            .await;
        return;
    }
    if tcp.write_all(b"S").await.is_err() {
        return;
    }
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut seen = Seen::default();
    let user = log_in(&mut tls, &state, &mut seen).await;
    seen.accepted = user.is_ok();
    if let Err(why) = &user {
        seen.refusal = Some(why.clone());
    }
    // A connection closed before its startup (a client that gave up) is no login attempt.
    if !seen.params.is_empty() {
        state.lock().unwrap().seen.push(seen);
    }
    if let Ok(user) = user {
        let _ = serve_queries(&mut tls, &user).await;
    }
}

/// Ends a login with a FATAL 28000 saying `why`.
async fn refuse<S: AsyncWrite + Unpin>(s: &mut S, why: String) -> Result<String, String> {
    let _ = s.write_all(&error("28000", &why)).await;
    Err(why)
}

/// The login: startup, request 14, the token. Ok: the user, with AuthenticationOk sent.
async fn log_in<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    state: &Mutex<State>,
    seen: &mut Seen,
) -> Result<String, String> {
    let len = usize::try_from(s.read_i32().await.map_err(|e| e.to_string())?).unwrap_or(0);
    if !(8..=10_000).contains(&len) {
        return Err("bad startup length".to_owned());
    }
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    if body[..4] != PROTOCOL_3_0.to_be_bytes() {
        return Err("not protocol 3.0".to_owned());
    }
    seen.params = startup_params(&body[4..]);
    if let Some(why) = check_startup(&seen.params) {
        return refuse(s, why).await;
    }
    s.write_all(&message(b'R', &14i32.to_be_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    let (tag, mut token) = read_message(s).await.map_err(|e| e.to_string())?;
    if tag != b'i' {
        return refuse(
            s,
            format!("expected the token message 'i', got {:?}", char::from(tag)),
        )
        .await;
    }
    seen.nul = token.last() == Some(&0);
    if seen.nul {
        token.pop();
    }
    let token = String::from_utf8_lossy(&token).into_owned();
    seen.token = Some(token.clone());
    match check_token(state, &token) {
        Ok(user) => {
            s.write_all(&message(b'R', &0i32.to_be_bytes()))
                .await
                .map_err(|e| e.to_string())?;
            Ok(user)
        }
        Err(why) => refuse(s, why).await,
    }
}

/// RowDescription for one text column `current_user`.
fn row_description() -> Vec<u8> {
    let mut d = 1i16.to_be_bytes().to_vec();
    d.extend_from_slice(b"current_user\0");
    d.extend_from_slice(&0i32.to_be_bytes()); // table oid
    d.extend_from_slice(&0i16.to_be_bytes()); // column
    d.extend_from_slice(&25i32.to_be_bytes()); // text
    d.extend_from_slice(&(-1i16).to_be_bytes());
    d.extend_from_slice(&(-1i32).to_be_bytes());
    d.extend_from_slice(&0i16.to_be_bytes()); // text format
    message(b'T', &d)
}

fn data_row(value: &str) -> Vec<u8> {
    let mut d = 1i16.to_be_bytes().to_vec();
    d.extend_from_slice(&i32::try_from(value.len()).unwrap().to_be_bytes());
    d.extend_from_slice(value.as_bytes());
    message(b'D', &d)
}

/// What a server sends after AuthenticationOk: a ParameterStatus for each of `params`,
/// BackendKeyData `key`, and ReadyForQuery (idle).
pub fn ready_for_query(params: &[(&str, &str)], key: [u8; 8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in params {
        out.extend(message(b'S', format!("{k}\0{v}\0").as_bytes()));
    }
    out.extend(message(b'K', &key));
    out.extend(message(b'Z', b"I"));
    out
}

/// After AuthenticationOk: parameters, key data, ReadyForQuery; then every query, simple or
/// extended, returns one row with `user`, until Terminate.
async fn serve_queries<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
) -> std::io::Result<()> {
    let params = [
        ("server_version", "8.0.2"),
        ("server_encoding", "UNICODE"),
        ("client_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
    ];
    s.write_all(&ready_for_query(&params, [0, 0, 0x30, 0x39, 0, 0, 0, 7]))
        .await?;
    loop {
        let (tag, body) = read_message(s).await?;
        let reply = match tag {
            b'Q' => [
                row_description(),
                data_row(user),
                message(b'C', b"SELECT 1\0"),
            ]
            .concat(),
            b'P' => message(b'1', b""),
            b'B' => message(b'2', b""),
            b'D' if body.first() == Some(&b'S') => {
                [message(b't', &0i16.to_be_bytes()), row_description()].concat()
            }
            b'D' => row_description(),
            b'E' => [data_row(user), message(b'C', b"SELECT 1\0")].concat(),
            b'C' => message(b'3', b""),
            b'S' => message(b'Z', b"I"),
            b'H' => Vec::new(),
            _ => return Ok(()),
        };
        let reply = if tag == b'Q' {
            [reply, message(b'Z', b"I")].concat()
        } else {
            reply
        };
        s.write_all(&reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_checks() {
        let p = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let good = [
            ("database", "dev"),
            ("idp_type", "AwsIdc"),
            ("token_type", "ACCESS_TOKEN"),
        ];
        assert_eq!(check_startup(&p(&good)), None);
        let mut with_empty_user = good.to_vec();
        with_empty_user.push(("user", ""));
        assert_eq!(check_startup(&p(&with_empty_user)), None);
        let mut with_user = good.to_vec();
        with_user.push(("user", "bob"));
        assert!(check_startup(&p(&with_user)).unwrap().contains("no user"));
        assert!(
            check_startup(&p(&good[..2]))
                .unwrap()
                .contains("token_type")
        );
        assert!(check_startup(&p(&[("database", "dev"), ("token_type", "x")])).is_some());
    }

    #[test]
    fn tokens_expire_and_single_use_ones_are_used_up() {
        let state = Arc::new(Mutex::new(State::default()));
        let issuer = Issuer(state.clone());
        let t = issuer.issue("alice", 60);
        let old = issuer.issue("bob", -1);
        assert_eq!(check_token(&state, &t).unwrap(), "alice");
        assert_eq!(check_token(&state, &t).unwrap(), "alice", "reusable");
        assert!(check_token(&state, &old).unwrap_err().contains("expired"));
        assert!(check_token(&state, "forged").is_err());
        state.lock().unwrap().accept_once = true;
        let once = issuer.issue("carol", 60);
        assert!(check_token(&state, &once).is_ok());
        assert!(
            check_token(&state, &once)
                .unwrap_err()
                .contains("already been used")
        );
    }
}
