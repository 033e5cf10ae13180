//! Logging in to the upstream with a [`Login`]: answering cleartext (3), MD5 (5),
//! SCRAM-SHA-256 (10/11/12) and Redshift's extensible digest (13) requests with a password,
//! and Redshift's identity provider request (14) with a token. [`Authenticator`] answers
//! parsed messages and does no I/O; [`authenticate`] runs it on a connection.

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

use crate::error::SessionError;
use crate::source::{Login, LoginSecret};
use crate::wire::{self, AuthRequest, ServerMessage};
use crate::wire_io;

/// How a login attempt failed.
#[derive(Debug)]
pub(crate) enum LoginError {
    /// The server refused the password or token (see [`server_error`]): worth one retry with
    /// a fresh one.
    Rejected(SessionError),
    /// Anything else.
    Failed(SessionError),
}

impl From<SessionError> for LoginError {
    fn from(e: SessionError) -> Self {
        LoginError::Failed(e)
    }
}

fn io_err(e: std::io::Error) -> LoginError {
    LoginError::Failed(SessionError::connect(format!(
        "upstream connection lost during login: {e}"
    )))
}

/// Answers the server's authentication requests until AuthenticationOk. The StartupMessage
/// has been sent.
pub(crate) async fn authenticate<S>(s: &mut S, login: &Login) -> Result<(), LoginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut auth = Authenticator::new(login);
    loop {
        let frame = wire_io::read_frame(s).await.map_err(io_err)?;
        let message = wire::decode(&frame).map_err(|e| {
            SessionError::protocol(format!(
                "malformed message from the server during login: {e}"
            ))
        })?;
        match auth.step(message)? {
            Step::Done => return Ok(()),
            Step::Wait => {}
            Step::Reply(mut reply) => {
                let sent = s.write_all(&reply).await;
                // The reply may carry the password (cleartext) or a hash of it.
                reply[..].zeroize();
                sent.map_err(io_err)?;
            }
        }
    }
}

/// What to do after a server message.
pub(crate) enum Step {
    /// Logged in.
    Done,
    /// Nothing to send; read the next message.
    Wait,
    /// Send this.
    Reply(BytesMut),
}

/// The client side of a login, one server message at a time.
pub(crate) struct Authenticator<'a> {
    login: &'a Login,
    scram: Option<ScramSha256>,
    /// The token has been sent: a 28000 now is the server refusing it.
    token_sent: bool,
}

impl<'a> Authenticator<'a> {
    pub(crate) fn new(login: &'a Login) -> Self {
        Authenticator {
            login,
            scram: None,
            token_sent: false,
        }
    }

    /// The answer to one server message.
    pub(crate) fn step(&mut self, message: ServerMessage) -> Result<Step, LoginError> {
        match message {
            ServerMessage::Auth(AuthRequest::Ok) => Ok(Step::Done),
            ServerMessage::Auth(request) => self.answer(request).map(Step::Reply),
            ServerMessage::Error { code, message } => {
                Err(server_error(code, &message, self.token_sent))
            }
            // NoticeResponse or NegotiateProtocolVersion during login: nothing to do.
            ServerMessage::Notice | ServerMessage::NegotiateProtocolVersion => Ok(Step::Wait),
            ServerMessage::BackendKeyData { .. } => Err(unexpected('K')),
            ServerMessage::ReadyForQuery => Err(unexpected('Z')),
            ServerMessage::Other(t) => Err(unexpected(char::from(t))),
        }
    }

    /// The reply to an authentication request other than AuthenticationOk.
    fn answer(&mut self, request: AuthRequest) -> Result<BytesMut, LoginError> {
        let (user, password) = match (&self.login.secret, &request) {
            (LoginSecret::Token { token, .. }, AuthRequest::IdentityProvider) => {
                self.token_sent = true;
                return idp_token_message(token.expose_secret().as_bytes());
            }
            (LoginSecret::Password { .. }, AuthRequest::IdentityProvider) => {
                return Err(SessionError::connect(
                    "the server asked for an identity provider token (Redshift authentication \
                     method 14), but this connection logs in with a database user's password: \
                     the server expects an IAM Identity Center login for this connection",
                )
                .into());
            }
            (_, AuthRequest::Other(c)) => {
                return Err(SessionError::connect(format!(
                    "the server asked for authentication method {c}, which redshift-creds does not support"
                ))
                .into());
            }
            (LoginSecret::Token { .. }, r) => {
                return Err(SessionError::connect(format!(
                    "the server asked for a password (authentication method {}), but this \
                     connection logs in with an IAM Identity Center token: the server did not \
                     take the token login (idp_type=AwsIdc)",
                    password_method(r)
                ))
                .into());
            }
            (LoginSecret::Password { user, password }, _) => {
                (user.as_str(), password.expose_secret().as_bytes())
            }
        };
        let mut out = BytesMut::new();
        let proto = |e: std::io::Error| SessionError::protocol(format!("authentication: {e}"));
        match request {
            AuthRequest::Ok => {}
            AuthRequest::Cleartext => {
                frontend::password_message(password, &mut out).map_err(proto)?
            }
            AuthRequest::Md5 { salt } => {
                let hash = Zeroizing::new(md5_hash(user.as_bytes(), password, salt));
                frontend::password_message(hash.as_bytes(), &mut out).map_err(proto)?;
            }
            AuthRequest::Sasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                    return Err(SessionError::connect(
                        "the server offers no SASL mechanism we support",
                    )
                    .into());
                }
                // Channel binding is not implemented: say so ("n"), so a server offering
                // SCRAM-SHA-256-PLUS does not expect it.
                let s = ScramSha256::new(password, ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut out)
                    .map_err(proto)?;
                self.scram = Some(s);
            }
            AuthRequest::SaslContinue(data) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| SessionError::protocol("SASL continue before SASL start"))?;
                s.update(&data).map_err(proto)?;
                frontend::sasl_response(s.message(), &mut out).map_err(proto)?;
            }
            AuthRequest::SaslFinal(data) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| SessionError::protocol("SASL final before SASL start"))?;
                s.finish(&data).map_err(|e| {
                    SessionError::connect(format!("the server's SCRAM signature is invalid: {e}"))
                })?;
            }
            AuthRequest::Digest {
                algorithm,
                salt,
                server_nonce,
            } => out = digest_reply(algorithm, &salt, &server_nonce, password)?,
            // Answered or refused above.
            AuthRequest::IdentityProvider | AuthRequest::Other(_) => {}
        }
        Ok(out)
    }
}

/// The method code of a request that needs a password, for messages.
fn password_method(request: &AuthRequest) -> i32 {
    match request {
        AuthRequest::Ok => 0,
        AuthRequest::Cleartext => 3,
        AuthRequest::Md5 { .. } => 5,
        AuthRequest::Sasl { .. } => 10,
        AuthRequest::SaslContinue(_) => 11,
        AuthRequest::SaslFinal(_) => 12,
        AuthRequest::Digest { .. } => 13,
        AuthRequest::IdentityProvider => 14,
        AuthRequest::Other(c) => *c,
    }
}

/// The answer to Redshift's AUTH_REQ_IDP (14): message `i`, an Int32 length (counting
/// itself), the token's bytes, then one NUL. This is the JDBC driver's layout,
/// aws/amazon-redshift-jdbc-driver src/main/java/com/amazon/redshift/core/v3/
/// ConnectionFactoryImpl.java lines 800-826 at commit de46a927 (`case AUTH_REQ_IDP`: `sendChar('i')`,
/// `sendInteger4(4 + token.length + 1)`, `send(token)`, `sendChar(0)`). redshift_connector
/// (aws/amazon-redshift-python-driver redshift_connector/core.py lines 1374-1389 at commit d2c7524a) sends the
/// same without the NUL (`create_message(b"i", token)`; its `_write(NULL_BYTE)` is
/// commented out); Redshift takes both.
fn idp_token_message(token: &[u8]) -> Result<BytesMut, LoginError> {
    if token.is_empty() || token.contains(&0) {
        return Err(SessionError::connect(
            "the identity provider token is empty or holds a NUL byte; it cannot be sent",
        )
        .into());
    }
    let mut out = BytesMut::with_capacity(token.len() + 6);
    out.put_u8(b'i');
    out.put_i32(
        i32::try_from(4 + token.len() + 1).map_err(|_| {
            SessionError::connect("the identity provider token is too long to send")
        })?,
    );
    out.put_slice(token);
    out.put_u8(0);
    Ok(out)
}

fn unexpected(tag: char) -> LoginError {
    SessionError::protocol(format!(
        "unexpected message {tag:?} from the server during login"
    ))
    .into()
}

/// The ErrorResponse the server ended the login with, as the client will see it: the
/// server's own SQLSTATE and message. Only a refused password is worth a retry with a fresh
/// one: 28P01, or 28000 with PostgreSQL's wording for it, which is what Redshift (and any
/// server older than 9.0) sends. Other 28000s (a pg_hba.conf rule, a refused replication
/// connection) are no fault of the password, and a fresh one would change nothing. After a
/// token was sent (`token_sent`), any 28000 or 28P01 is the server refusing that token: an
/// expired or already used token is worth a fresh one.
fn server_error(code: String, msg: &str, token_sent: bool) -> LoginError {
    let rejected = code == "28P01"
        || (code == "28000" && (token_sent || msg.starts_with("password authentication failed")));
    let code = if code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        code
    } else {
        "08001".to_owned()
    };
    let e = SessionError::new(code, format!("the server refused the login: {msg}"));
    if rejected {
        LoginError::Rejected(e)
    } else {
        LoginError::Failed(e)
    }
}

/// The reply to Redshift's AUTH_REQ_DIGEST: message `d` with the digest and the client
/// nonce, each Int32-length-prefixed.
fn digest_reply(
    algorithm: i32,
    salt: &[u8],
    server_nonce: &[u8],
    password: &[u8],
) -> Result<BytesMut, LoginError> {
    if algorithm != 0 {
        return Err(SessionError::connect(format!(
            "the server asked for digest algorithm {algorithm}; only 0 (SHA-256) is supported"
        ))
        .into());
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let client_nonce = millis.to_string();
    let digest = redshift_digest(password, salt, server_nonce, client_nonce.as_bytes());
    let mut out = BytesMut::new();
    out.put_u8(b'd');
    out.put_i32(i32::try_from(4 + 4 + digest.len() + 4 + client_nonce.len()).expect("small"));
    out.put_i32(i32::try_from(digest.len()).expect("32"));
    out.put_slice(&digest);
    out.put_i32(i32::try_from(client_nonce.len()).expect("small"));
    out.put_slice(client_nonce.as_bytes());
    Ok(out)
}

/// SHA256( SHA256(password ‖ salt) ‖ server_nonce ‖ client_nonce ), as Redshift's drivers
/// compute it (ExtensibleDigest).
pub(crate) fn redshift_digest(
    password: &[u8],
    salt: &[u8],
    server_nonce: &[u8],
    client_nonce: &[u8],
) -> [u8; 32] {
    let inner = Sha256::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize();
    Sha256::new()
        .chain_update(inner)
        .chain_update(server_nonce)
        .chain_update(client_nonce)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_a_hand_computed_value() {
        // sha256(sha256("pw" + "salt") + "sn" + "cn"), computed independently with:
        // python3 -c 'import hashlib;i=hashlib.sha256(b"pwsalt").digest();print(hashlib.sha256(i+b"sn"+b"cn").hexdigest())'
        let d = redshift_digest(b"pw", b"salt", b"sn", b"cn");
        assert_eq!(
            hex::encode(d),
            include_str!("../tests/support/digest_vector.txt").trim()
        );
    }

    fn i32_at(b: &[u8], at: usize) -> usize {
        i32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }

    #[test]
    fn digest_reply_has_the_wire_layout() {
        let out = digest_reply(0, b"salt", b"sn", b"pw").unwrap();
        assert_eq!(out[0], b'd');
        assert_eq!(i32_at(&out, 1), out.len() - 1);
        assert_eq!(i32_at(&out, 5), 32);
        let nonce_len = i32_at(&out, 41);
        let nonce = &out[45..45 + nonce_len];
        assert!(nonce.iter().all(u8::is_ascii_digit));
        assert_eq!(&out[9..41], &redshift_digest(b"pw", b"salt", b"sn", nonce));
        assert!(digest_reply(1, b"salt", b"sn", b"pw").is_err());
    }

    fn login() -> Login {
        Login::password("IAM:alice", secrecy::SecretString::from("s3cret"), 0)
    }

    fn token_login(token: &str) -> Login {
        Login::token(secrecy::SecretString::from(token), "ACCESS_TOKEN", 0)
    }

    fn auth(request: AuthRequest) -> ServerMessage {
        ServerMessage::Auth(request)
    }

    fn reply(step: Result<Step, LoginError>) -> BytesMut {
        match step {
            Ok(Step::Reply(r)) => r,
            Ok(Step::Done) => panic!("done"),
            Ok(Step::Wait) => panic!("wait"),
            Err(e) => panic!("{e:?}"),
        }
    }

    fn failed(step: Result<Step, LoginError>) -> SessionError {
        match step {
            Err(LoginError::Failed(e)) => e,
            Err(LoginError::Rejected(e)) => panic!("rejected: {e}"),
            Ok(_) => panic!("no error"),
        }
    }

    #[test]
    fn answers_cleartext_and_md5_with_the_login() {
        let l = login();
        let mut a = Authenticator::new(&l);
        let mut want = BytesMut::new();
        frontend::password_message(b"s3cret", &mut want).unwrap();
        assert_eq!(reply(a.step(auth(AuthRequest::Cleartext))), want);
        let mut want = BytesMut::new();
        let hash = md5_hash(b"IAM:alice", b"s3cret", *b"salt");
        frontend::password_message(hash.as_bytes(), &mut want).unwrap();
        assert_eq!(
            reply(a.step(auth(AuthRequest::Md5 { salt: *b"salt" }))),
            want
        );
        assert!(matches!(a.step(auth(AuthRequest::Ok)), Ok(Step::Done)));
    }

    #[test]
    fn starts_scram_only_when_offered_and_in_order() {
        let l = login();
        let mut a = Authenticator::new(&l);
        let e = failed(a.step(auth(AuthRequest::SaslContinue(b"r=x".to_vec()))));
        assert_eq!(e.sqlstate, "08P01");
        let e = failed(a.step(auth(AuthRequest::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into()],
        })));
        assert!(e.message.contains("no SASL mechanism"), "{e}");
        let first = reply(a.step(auth(AuthRequest::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
        })));
        assert_eq!(first[0], b'p');
        let text = String::from_utf8_lossy(&first);
        assert!(text.contains("SCRAM-SHA-256\0"), "{text}");
        assert!(text.contains("n,,n=,r="), "no channel binding: {text}");
        // A server nonce that does not extend ours.
        let e = failed(a.step(auth(AuthRequest::SaslContinue(
            b"r=other,s=c2FsdA==,i=4096".to_vec(),
        ))));
        assert_eq!(e.sqlstate, "08P01");
    }

    #[test]
    fn refuses_methods_it_cannot_answer() {
        let l = login();
        let mut a = Authenticator::new(&l);
        let e = failed(a.step(auth(AuthRequest::IdentityProvider)));
        assert!(
            e.message
                .contains("identity provider token (Redshift authentication method 14)")
                && e.message
                    .contains("logs in with a database user's password"),
            "{e}"
        );
        let e = failed(a.step(auth(AuthRequest::Other(7))));
        assert!(e.message.contains("method 7"), "{e}");
        let e = failed(a.step(ServerMessage::ReadyForQuery));
        assert_eq!(e.sqlstate, "08P01");
        assert!(matches!(a.step(ServerMessage::Notice), Ok(Step::Wait)));
        assert!(matches!(
            a.step(ServerMessage::NegotiateProtocolVersion),
            Ok(Step::Wait)
        ));
    }

    #[test]
    fn only_a_refused_password_is_worth_a_retry() {
        let l = login();
        let mut a = Authenticator::new(&l);
        let mut error = |code: &str, message: &str| {
            a.step(ServerMessage::Error {
                code: code.into(),
                message: message.into(),
            })
        };
        assert!(matches!(
            error("28P01", "x"),
            Err(LoginError::Rejected(e)) if e.sqlstate == "28P01"
        ));
        assert!(matches!(
            error("28000", "password authentication failed for user \"a\""),
            Err(LoginError::Rejected(_))
        ));
        assert!(matches!(
            error("28000", "no pg_hba.conf entry"),
            Err(LoginError::Failed(e)) if e.sqlstate == "28000"
        ));
        assert!(matches!(
            error("28\n00", "x"),
            Err(LoginError::Failed(e)) if e.sqlstate == "08001"
        ));
    }

    #[test]
    fn answers_request_14_with_the_token_as_the_jdbc_driver_does() {
        let l = token_login("eyJ.tok-en");
        let mut a = Authenticator::new(&l);
        let got = reply(a.step(auth(AuthRequest::IdentityProvider)));
        // 'i', Int32 length counting itself, the token, one NUL.
        let mut want = vec![b'i', 0, 0, 0, 4 + 10 + 1];
        want.extend_from_slice(b"eyJ.tok-en\0");
        assert_eq!(&got[..], &want[..]);
        assert_eq!(i32_at(&got, 1), got.len() - 1);
        assert!(matches!(a.step(auth(AuthRequest::Ok)), Ok(Step::Done)));
    }

    #[test]
    fn a_token_login_answers_no_password_request() {
        let l = token_login("tok");
        for request in [
            AuthRequest::Cleartext,
            AuthRequest::Md5 { salt: *b"salt" },
            AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()],
            },
        ] {
            let mut a = Authenticator::new(&l);
            let e = failed(a.step(auth(request)));
            assert_eq!(e.sqlstate, "08001");
            assert!(
                e.message
                    .contains("logs in with an IAM Identity Center token"),
                "{e}"
            );
        }
        for bad in ["", "a\0b"] {
            let l = token_login(bad);
            let e = failed(Authenticator::new(&l).step(auth(AuthRequest::IdentityProvider)));
            assert!(e.message.contains("empty or holds a NUL"), "{e}");
        }
    }

    #[test]
    fn a_refused_token_is_worth_a_retry() {
        let l = token_login("tok");
        let mut a = Authenticator::new(&l);
        let error = || ServerMessage::Error {
            code: "28000".into(),
            message: "token is expired".into(),
        };
        // Before the token was sent, a 28000 is no refusal of it.
        assert!(matches!(a.step(error()), Err(LoginError::Failed(_))));
        reply(a.step(auth(AuthRequest::IdentityProvider)));
        assert!(matches!(
            a.step(error()),
            Err(LoginError::Rejected(e)) if e.sqlstate == "28000" && e.message.contains("token is expired")
        ));
        assert!(matches!(
            a.step(ServerMessage::Error {
                code: "3D000".into(),
                message: "no such database".into(),
            }),
            Err(LoginError::Failed(_))
        ));
    }
}
