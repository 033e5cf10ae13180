//! The PostgreSQL wire format the proxy speaks, as parsers and writers on bytes (no I/O;
//! `wire_io.rs` reads off streams with these). Backend messages are parsed by
//! `postgres_protocol::message::backend`; by hand only what that crate has nothing for: the
//! startup packet a client sends, Redshift's authentication requests 13 (digest) and 14
//! (identity provider), which its parser rejects, and the backend messages the proxy writes
//! itself (ErrorResponse, AuthenticationOk, NegotiateProtocolVersion).

use bytes::{BufMut, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{self, ErrorFields, Header, Message};

/// The startup packet codes (protocol 3.0 and the special requests).
pub(crate) const PROTOCOL_3_0: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// The largest startup packet accepted (libpq's own limit is 10000).
const MAX_STARTUP: usize = 10_000;
/// The largest backend message accepted while logging in; ParameterStatus, errors and
/// authentication requests are all far smaller.
const MAX_LOGIN_MESSAGE: usize = 1 << 20;

/// NegotiateProtocolVersion's type byte (postgres_protocol has no parser for it).
const NEGOTIATE_PROTOCOL_VERSION_TAG: u8 = b'v';
/// Redshift's AUTH_REQ_DIGEST and AUTH_REQ_IDP.
const AUTH_REQ_DIGEST: i32 = 13;
const AUTH_REQ_IDP: i32 = 14;

/// What a client opened a connection with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Startup {
    Ssl,
    GssEnc,
    Cancel {
        pid: i32,
        key: i32,
    },
    Params {
        version: i32,
        params: Vec<(String, String)>,
    },
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// The body length of a startup packet from its 4-byte length prefix.
pub(crate) fn startup_body_len(prefix: [u8; 4]) -> std::io::Result<usize> {
    let len = usize::try_from(i32::from_be_bytes(prefix))
        .map_err(|_| invalid("negative startup packet length"))?;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(invalid(format!("invalid startup packet length {len}")));
    }
    Ok(len - 4)
}

/// Parses a startup packet body (after the length).
pub(crate) fn parse_startup(body: &[u8]) -> std::io::Result<Startup> {
    let code = i32_at(body, 0).ok_or_else(|| invalid("short startup packet"))?;
    let rest = &body[4..];
    match code {
        SSL_REQUEST => Ok(Startup::Ssl),
        GSSENC_REQUEST => Ok(Startup::GssEnc),
        CANCEL_REQUEST if rest.len() == 8 => Ok(Startup::Cancel {
            pid: i32_at(rest, 0).expect("8 bytes"),
            key: i32_at(rest, 4).expect("8 bytes"),
        }),
        CANCEL_REQUEST => Err(invalid("cancel request with an unsupported key length")),
        v if v >> 16 == 3 => Ok(Startup::Params {
            version: v,
            params: parse_params(rest)?,
        }),
        v => Err(invalid(format!(
            "unsupported frontend protocol {}.{}",
            v >> 16,
            v & 0xffff
        ))),
    }
}

/// Parses the NUL-terminated name/value pairs of a StartupMessage.
fn parse_params(mut rest: &[u8]) -> std::io::Result<Vec<(String, String)>> {
    let mut params = Vec::new();
    loop {
        let (name, after) = cstr(rest)?;
        if name.is_empty() {
            return Ok(params);
        }
        let (value, after) = cstr(after)?;
        params.push((name, value));
        rest = after;
    }
}

/// Splits a NUL-terminated UTF-8 string off the front of `b`.
fn cstr(b: &[u8]) -> std::io::Result<(String, &[u8])> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| invalid("missing string terminator"))?;
    let s = std::str::from_utf8(&b[..end]).map_err(|_| invalid("string is not UTF-8"))?;
    Ok((s.to_owned(), &b[end + 1..]))
}

/// One backend message: its type byte and the whole frame (type, length, body), kept whole
/// so it can be forwarded as it came.
pub(crate) struct Frame {
    pub tag: u8,
    pub bytes: Bytes,
}

/// The length of the rest of a backend message (after the 5-byte header), from its header.
pub(crate) fn frame_body_len(head: &[u8; 5]) -> std::io::Result<usize> {
    let header = Header::parse(head)?.ok_or_else(|| invalid("short message header"))?;
    let len = usize::try_from(header.len()).map_err(|_| invalid("negative message length"))?;
    if len > MAX_LOGIN_MESSAGE {
        return Err(invalid(format!("invalid message length {len}")));
    }
    Ok(len - 4)
}

/// What the proxy needs to know of a backend message during login and hand-over.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ServerMessage {
    Auth(AuthRequest),
    /// ErrorResponse: its SQLSTATE and message (empty when missing).
    Error {
        code: String,
        message: String,
    },
    Notice,
    NegotiateProtocolVersion,
    BackendKeyData {
        pid: i32,
        key: i32,
    },
    ReadyForQuery,
    /// Any other message, left unparsed: the proxy only forwards it.
    Other(u8),
}

/// An authentication request (`R`), by what it asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthRequest {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    /// Redshift's AUTH_REQ_DIGEST (13): Int32 algorithm, then salt and server nonce, each
    /// Int32-length-prefixed.
    Digest {
        algorithm: i32,
        salt: Vec<u8>,
        server_nonce: Vec<u8>,
    },
    /// Redshift's AUTH_REQ_IDP (14): a token from an identity provider.
    IdentityProvider,
    /// Any other method, by its code.
    Other(i32),
}

/// Parses a backend message. Only the types the proxy acts on are parsed; the others are
/// [`ServerMessage::Other`].
pub(crate) fn decode(frame: &Frame) -> std::io::Result<ServerMessage> {
    let body = &frame.bytes[5..];
    match frame.tag {
        backend::AUTHENTICATION_TAG => match i32_at(body, 0) {
            Some(AUTH_REQ_DIGEST) => digest_request(&body[4..]).map(ServerMessage::Auth),
            Some(AUTH_REQ_IDP) => Ok(ServerMessage::Auth(AuthRequest::IdentityProvider)),
            _ => library(frame),
        },
        NEGOTIATE_PROTOCOL_VERSION_TAG => Ok(ServerMessage::NegotiateProtocolVersion),
        backend::ERROR_RESPONSE_TAG
        | backend::NOTICE_RESPONSE_TAG
        | backend::BACKEND_KEY_DATA_TAG
        | backend::READY_FOR_QUERY_TAG => library(frame),
        t => Ok(ServerMessage::Other(t)),
    }
}

/// Parses a message with `postgres_protocol`.
fn library(frame: &Frame) -> std::io::Result<ServerMessage> {
    let mut buf = BytesMut::from(&frame.bytes[..]);
    let message = Message::parse(&mut buf)
        .map_err(|e| invalid(e.to_string()))?
        .ok_or_else(|| invalid("truncated message"))?;
    Ok(match message {
        Message::AuthenticationOk => ServerMessage::Auth(AuthRequest::Ok),
        Message::AuthenticationCleartextPassword => ServerMessage::Auth(AuthRequest::Cleartext),
        Message::AuthenticationMd5Password(b) => {
            ServerMessage::Auth(AuthRequest::Md5 { salt: b.salt() })
        }
        Message::AuthenticationSasl(b) => ServerMessage::Auth(AuthRequest::Sasl {
            mechanisms: b.mechanisms().map(|m| Ok(m.to_owned())).collect()?,
        }),
        Message::AuthenticationSaslContinue(b) => {
            ServerMessage::Auth(AuthRequest::SaslContinue(b.data().to_vec()))
        }
        Message::AuthenticationSaslFinal(b) => {
            ServerMessage::Auth(AuthRequest::SaslFinal(b.data().to_vec()))
        }
        Message::AuthenticationKerberosV5 => ServerMessage::Auth(AuthRequest::Other(2)),
        Message::AuthenticationScmCredential => ServerMessage::Auth(AuthRequest::Other(6)),
        Message::AuthenticationGss => ServerMessage::Auth(AuthRequest::Other(7)),
        Message::AuthenticationGssContinue(_) => ServerMessage::Auth(AuthRequest::Other(8)),
        Message::AuthenticationSspi => ServerMessage::Auth(AuthRequest::Other(9)),
        Message::ErrorResponse(b) => {
            let (code, message) = error_fields(b.fields());
            ServerMessage::Error { code, message }
        }
        Message::NoticeResponse(_) => ServerMessage::Notice,
        Message::BackendKeyData(b) => ServerMessage::BackendKeyData {
            pid: b.process_id(),
            key: b.secret_key(),
        },
        Message::ReadyForQuery(_) => ServerMessage::ReadyForQuery,
        _ => ServerMessage::Other(frame.tag),
    })
}

/// Redshift's digest request body (after the code).
fn digest_request(body: &[u8]) -> std::io::Result<AuthRequest> {
    let short = || invalid("malformed digest authentication request");
    let algorithm = i32_at(body, 0).ok_or_else(short)?;
    let (salt, next) = length_prefixed(body, 4).ok_or_else(short)?;
    let (server_nonce, _) = length_prefixed(body, next).ok_or_else(short)?;
    Ok(AuthRequest::Digest {
        algorithm,
        salt: salt.to_vec(),
        server_nonce: server_nonce.to_vec(),
    })
}

/// An Int32-length-prefixed field of `body` at `at`, and the offset after it.
fn length_prefixed(body: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = usize::try_from(i32_at(body, at)?).ok()?;
    let start = at + 4;
    Some((body.get(start..start.checked_add(len)?)?, start + len))
}

/// The SQLSTATE and message of an ErrorResponse; what a malformed one has before the fault.
fn error_fields(mut fields: ErrorFields<'_>) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    (code, message)
}

/// A big-endian i32 at `at` in `b`, if there is one.
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Writes a backend message with `tag` and `body`.
fn message(tag: u8, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(body.len() + 5);
    b.put_u8(tag);
    b.put_i32(i32::try_from(body.len() + 4).expect("small message"));
    b.put_slice(body);
    b
}

/// A FATAL ErrorResponse with `sqlstate` and `message` (prefixed `redshift-creds: `).
pub(crate) fn error_response(sqlstate: &str, message_text: &str) -> BytesMut {
    let mut body = BytesMut::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', &format!("redshift-creds: {message_text}")),
    ] {
        body.put_u8(field);
        // A NUL inside a value would end it early; none of ours has one, but be sure.
        body.put_slice(value.replace('\0', " ").as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    message(backend::ERROR_RESPONSE_TAG, &body)
}

/// AuthenticationOk.
pub(crate) fn authentication_ok() -> BytesMut {
    message(backend::AUTHENTICATION_TAG, &0i32.to_be_bytes())
}

/// NegotiateProtocolVersion: the proxy speaks 3.0 and none of `unsupported` (`_pq_.` options).
pub(crate) fn negotiate_protocol_version(unsupported: &[String]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i32(PROTOCOL_3_0);
    body.put_i32(i32::try_from(unsupported.len()).unwrap_or(i32::MAX));
    for name in unsupported {
        body.put_slice(name.as_bytes());
        body.put_u8(0);
    }
    message(NEGOTIATE_PROTOCOL_VERSION_TAG, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole frame with `tag` and `body`, as read off the wire.
    pub(crate) fn frame(tag: u8, body: &[u8]) -> Frame {
        Frame {
            tag,
            bytes: message(tag, body).freeze(),
        }
    }

    /// An authentication request with `code` and the rest of its body.
    pub(crate) fn auth(code: i32, rest: &[u8]) -> Frame {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(rest);
        frame(b'R', &body)
    }

    #[test]
    fn parses_startup_params() {
        let mut b = PROTOCOL_3_0.to_be_bytes().to_vec();
        b.extend_from_slice(b"user\0bob\0database\0db\0\0");
        assert_eq!(
            parse_startup(&b).unwrap(),
            Startup::Params {
                version: PROTOCOL_3_0,
                params: vec![
                    ("user".into(), "bob".into()),
                    ("database".into(), "db".into())
                ]
            }
        );
        b.truncate(b.len() - 1);
        assert!(parse_startup(&b).is_err(), "no final terminator");
    }

    #[test]
    fn parses_special_requests() {
        assert_eq!(
            parse_startup(&SSL_REQUEST.to_be_bytes()).unwrap(),
            Startup::Ssl
        );
        assert_eq!(
            parse_startup(&GSSENC_REQUEST.to_be_bytes()).unwrap(),
            Startup::GssEnc
        );
        let mut b = CANCEL_REQUEST.to_be_bytes().to_vec();
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&(-9i32).to_be_bytes());
        assert_eq!(
            parse_startup(&b).unwrap(),
            Startup::Cancel { pid: 7, key: -9 }
        );
        b.extend_from_slice(&[0; 24]);
        assert!(parse_startup(&b).is_err(), "a 3.2-style long key");
        assert!(parse_startup(&1234i32.to_be_bytes()).is_err());
    }

    #[test]
    fn a_short_startup_body_is_an_error_not_a_panic() {
        assert!(parse_startup(&[0, 3]).is_err());
        assert!(parse_startup(&[]).is_err());
    }

    #[test]
    fn startup_lengths_are_bounded() {
        assert_eq!(startup_body_len(8i32.to_be_bytes()).unwrap(), 4);
        assert_eq!(startup_body_len(10_000i32.to_be_bytes()).unwrap(), 9996);
        for bad in [7, 10_001, -1, i32::MIN] {
            assert!(startup_body_len(bad.to_be_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_lengths_are_bounded() {
        let head = |len: i32| {
            let mut h = [b'R', 0, 0, 0, 0];
            h[1..].copy_from_slice(&len.to_be_bytes());
            h
        };
        assert_eq!(frame_body_len(&head(4)).unwrap(), 0);
        assert_eq!(frame_body_len(&head(12)).unwrap(), 8);
        for bad in [3, 0, -1, (1 << 20) + 1] {
            assert!(frame_body_len(&head(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_response_round_trips_through_the_library_parser() {
        let e = error_response("28000", "not you\0really");
        let f = Frame {
            tag: e[0],
            bytes: e.freeze(),
        };
        assert_eq!(
            decode(&f).unwrap(),
            ServerMessage::Error {
                code: "28000".into(),
                message: "redshift-creds: not you really".into()
            }
        );
    }

    #[test]
    fn a_malformed_error_keeps_the_fields_before_the_fault() {
        let f = frame(b'E', b"C28P01\0Mbad password\0Xno terminator");
        assert_eq!(
            decode(&f).unwrap(),
            ServerMessage::Error {
                code: "28P01".into(),
                message: "bad password".into()
            }
        );
        let f = frame(b'E', b"M\xff\xfe\0\0");
        assert_eq!(
            decode(&f).unwrap(),
            ServerMessage::Error {
                code: String::new(),
                message: "\u{fffd}\u{fffd}".into()
            }
        );
    }

    #[test]
    fn decodes_authentication_requests() {
        assert_eq!(
            decode(&auth(0, b"")).unwrap(),
            ServerMessage::Auth(AuthRequest::Ok)
        );
        assert_eq!(
            decode(&auth(3, b"")).unwrap(),
            ServerMessage::Auth(AuthRequest::Cleartext)
        );
        assert_eq!(
            decode(&auth(5, b"salt")).unwrap(),
            ServerMessage::Auth(AuthRequest::Md5 { salt: *b"salt" })
        );
        assert!(decode(&auth(5, b"sa")).is_err(), "short salt");
        assert_eq!(
            decode(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")).unwrap(),
            ServerMessage::Auth(AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            })
        );
        assert!(
            decode(&auth(10, b"SCRAM-SHA-256")).is_err(),
            "no terminator"
        );
        assert_eq!(
            decode(&auth(11, b"r=abc")).unwrap(),
            ServerMessage::Auth(AuthRequest::SaslContinue(b"r=abc".to_vec()))
        );
        assert_eq!(
            decode(&auth(12, b"v=xyz")).unwrap(),
            ServerMessage::Auth(AuthRequest::SaslFinal(b"v=xyz".to_vec()))
        );
        assert_eq!(
            decode(&auth(7, b"")).unwrap(),
            ServerMessage::Auth(AuthRequest::Other(7))
        );
        assert_eq!(
            decode(&auth(14, b"")).unwrap(),
            ServerMessage::Auth(AuthRequest::IdentityProvider)
        );
        assert!(decode(&auth(99, b"")).is_err(), "the library's refusal");
        assert!(decode(&frame(b'R', b"\0\0")).is_err(), "no code");
    }

    #[test]
    fn decodes_redshift_digest_requests() {
        let mut rest = 0i32.to_be_bytes().to_vec();
        rest.extend_from_slice(&4i32.to_be_bytes());
        rest.extend_from_slice(b"salt");
        rest.extend_from_slice(&2i32.to_be_bytes());
        rest.extend_from_slice(b"sn");
        assert_eq!(
            decode(&auth(13, &rest)).unwrap(),
            ServerMessage::Auth(AuthRequest::Digest {
                algorithm: 0,
                salt: b"salt".to_vec(),
                server_nonce: b"sn".to_vec()
            })
        );
        for cut in [2, 6, 10, rest.len() - 1] {
            assert!(decode(&auth(13, &rest[..cut])).is_err(), "cut at {cut}");
        }
        let mut huge = rest.clone();
        huge[4..8].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(&auth(13, &huge)).is_err());
        huge[4..8].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode(&auth(13, &huge)).is_err());
    }

    #[test]
    fn decodes_what_the_hand_over_watches() {
        let mut kd = 7i32.to_be_bytes().to_vec();
        kd.extend_from_slice(&(-9i32).to_be_bytes());
        assert_eq!(
            decode(&frame(b'K', &kd)).unwrap(),
            ServerMessage::BackendKeyData { pid: 7, key: -9 }
        );
        assert!(decode(&frame(b'K', &kd[..6])).is_err());
        assert_eq!(
            decode(&frame(b'Z', b"I")).unwrap(),
            ServerMessage::ReadyForQuery
        );
        assert_eq!(
            decode(&frame(b'N', b"Mhello\0\0")).unwrap(),
            ServerMessage::Notice
        );
        let v = negotiate_protocol_version(&["_pq_.x".into()]);
        assert_eq!(v[0], b'v');
        assert_eq!(
            decode(&frame(b'v', &v[5..])).unwrap(),
            ServerMessage::NegotiateProtocolVersion
        );
        assert_eq!(
            decode(&frame(b'S', b"not even a cstring")).unwrap(),
            ServerMessage::Other(b'S')
        );
    }

    #[test]
    fn authentication_ok_is_what_the_library_reads_as_such() {
        let ok = authentication_ok();
        let f = Frame {
            tag: ok[0],
            bytes: ok.freeze(),
        };
        assert_eq!(decode(&f).unwrap(), ServerMessage::Auth(AuthRequest::Ok));
    }
}
