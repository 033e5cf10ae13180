//! Logging in to the upstream with a [`Login`]: answering cleartext (3), MD5 (5),
//! SCRAM-SHA-256 (10/11/12) and Redshift's extensible digest (13) requests.

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

use crate::error::SessionError;
use crate::source::Login;
use crate::wire::{self, Frame, cstr, i32_at};

/// How a login attempt failed.
#[derive(Debug)]
pub(crate) enum LoginError {
    /// The server refused the password (see [`server_error`]): worth one retry with a fresh one.
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
    let mut scram: Option<ScramSha256> = None;
    loop {
        let frame = wire::read_frame(s).await.map_err(io_err)?;
        match frame.tag {
            b'R' => {
                let code = i32_at(frame.body(), 0)
                    .ok_or_else(|| SessionError::protocol("short authentication request"))?;
                if code == 0 {
                    return Ok(());
                }
                let mut reply = answer(code, &frame, login, &mut scram)?;
                let sent = s.write_all(&reply).await;
                // The reply may carry the password (cleartext) or a hash of it.
                reply[..].zeroize();
                sent.map_err(io_err)?;
            }
            b'E' => return Err(server_error(frame.body())),
            // NoticeResponse or NegotiateProtocolVersion during login: nothing to do.
            b'N' | b'v' => {}
            t => {
                return Err(SessionError::protocol(format!(
                    "unexpected message {:?} from the server during login",
                    char::from(t)
                ))
                .into());
            }
        }
    }
}

/// The ErrorResponse the server ended the login with, as the client will see it: the
/// server's own SQLSTATE and message. Only a refused password is worth a retry with a fresh
/// one: 28P01, or 28000 with PostgreSQL's wording for it, which is what Redshift (and any
/// server older than 9.0) sends. Other 28000s (a pg_hba.conf rule, a refused replication
/// connection) are no fault of the password, and a fresh one would change nothing.
fn server_error(body: &[u8]) -> LoginError {
    let (code, msg) = wire::error_fields(body);
    let rejected =
        code == "28P01" || (code == "28000" && msg.starts_with("password authentication failed"));
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

/// The reply to authentication request `code`.
fn answer(
    code: i32,
    frame: &Frame,
    login: &Login,
    scram: &mut Option<ScramSha256>,
) -> Result<BytesMut, LoginError> {
    let password = login.password.expose_secret().as_bytes();
    let body = &frame.body()[4..];
    let mut out = BytesMut::new();
    let proto = |e: std::io::Error| SessionError::protocol(format!("authentication: {e}"));
    match code {
        3 => frontend::password_message(password, &mut out).map_err(proto)?,
        5 => {
            let salt: [u8; 4] = body
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| SessionError::protocol("short MD5 salt"))?;
            let hash = Zeroizing::new(md5_hash(login.user.as_bytes(), password, salt));
            frontend::password_message(hash.as_bytes(), &mut out).map_err(proto)?;
        }
        10 => {
            if !sasl_mechanisms(body).iter().any(|m| m == "SCRAM-SHA-256") {
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
            *scram = Some(s);
        }
        11 => {
            let s = scram
                .as_mut()
                .ok_or_else(|| SessionError::protocol("SASL continue before SASL start"))?;
            s.update(body).map_err(proto)?;
            frontend::sasl_response(s.message(), &mut out).map_err(proto)?;
        }
        12 => {
            let s = scram
                .as_mut()
                .ok_or_else(|| SessionError::protocol("SASL final before SASL start"))?;
            s.finish(body).map_err(|e| {
                SessionError::connect(format!("the server's SCRAM signature is invalid: {e}"))
            })?;
        }
        13 => out = digest_reply(body, password)?,
        c => {
            return Err(SessionError::connect(format!(
                "the server asked for authentication method {c}, which redshift-creds does not support"
            ))
            .into());
        }
    }
    Ok(out)
}

/// The mechanism names in an AuthenticationSASL body.
fn sasl_mechanisms(mut body: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    while let Ok((name, rest)) = cstr(body) {
        if name.is_empty() {
            break;
        }
        names.push(name);
        body = rest;
    }
    names
}

/// A length-prefixed field of an AUTH_REQ_DIGEST body at `at`, and the offset after it.
fn lv(body: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = usize::try_from(i32_at(body, at)?).ok()?;
    let start = at + 4;
    Some((body.get(start..start + len)?, start + len))
}

/// The reply to Redshift's AUTH_REQ_DIGEST: the request is Int32 algorithm (0 = SHA-256),
/// then salt and server nonce, each Int32-length-prefixed; the reply is message `d` with the
/// digest and the client nonce, each Int32-length-prefixed.
fn digest_reply(body: &[u8], password: &[u8]) -> Result<BytesMut, LoginError> {
    let short = || SessionError::protocol("malformed digest authentication request");
    let algorithm = i32_at(body, 0).ok_or_else(short)?;
    if algorithm != 0 {
        return Err(SessionError::connect(format!(
            "the server asked for digest algorithm {algorithm}; only 0 (SHA-256) is supported"
        ))
        .into());
    }
    let (salt, next) = lv(body, 4).ok_or_else(short)?;
    let (server_nonce, _) = lv(body, next).ok_or_else(short)?;
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

    #[test]
    fn digest_reply_has_the_wire_layout() {
        let mut req = Vec::new();
        req.extend_from_slice(&0i32.to_be_bytes());
        req.extend_from_slice(&4i32.to_be_bytes());
        req.extend_from_slice(b"salt");
        req.extend_from_slice(&2i32.to_be_bytes());
        req.extend_from_slice(b"sn");
        let out = digest_reply(&req, b"pw").unwrap();
        assert_eq!(out[0], b'd');
        let len = i32_at(&out, 1).unwrap() as usize;
        assert_eq!(len, out.len() - 1);
        assert_eq!(i32_at(&out, 5), Some(32));
        let nonce_len = i32_at(&out, 41).unwrap() as usize;
        let nonce = &out[45..45 + nonce_len];
        assert!(nonce.iter().all(u8::is_ascii_digit));
        assert_eq!(&out[9..41], &redshift_digest(b"pw", b"salt", b"sn", nonce));
        let mut bad = req.clone();
        bad[3] = 1;
        assert!(digest_reply(&bad, b"pw").is_err());
        assert!(digest_reply(&req[..10], b"pw").is_err());
    }

    #[test]
    fn lists_sasl_mechanisms() {
        assert_eq!(
            sasl_mechanisms(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
            vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        );
    }
}
