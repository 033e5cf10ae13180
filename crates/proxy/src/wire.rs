//! PostgreSQL wire framing the proxy needs beyond `postgres_protocol`: reading the client's
//! startup packet, reading whole backend messages, and writing the few backend messages the
//! proxy itself sends (ErrorResponse, AuthenticationOk, NegotiateProtocolVersion).

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Reads one startup packet (length-prefixed, no type byte).
pub(crate) async fn read_startup<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Startup> {
    let len = s.read_i32().await?;
    let len = usize::try_from(len).map_err(|_| invalid("negative startup packet length"))?;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(invalid(format!("invalid startup packet length {len}")));
    }
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await?;
    parse_startup(&body)
}

/// Parses a startup packet body (after the length).
pub(crate) fn parse_startup(body: &[u8]) -> std::io::Result<Startup> {
    let code = i32::from_be_bytes(body[..4].try_into().unwrap());
    let rest = &body[4..];
    match code {
        SSL_REQUEST => Ok(Startup::Ssl),
        GSSENC_REQUEST => Ok(Startup::GssEnc),
        CANCEL_REQUEST if rest.len() == 8 => Ok(Startup::Cancel {
            pid: i32::from_be_bytes(rest[..4].try_into().unwrap()),
            key: i32::from_be_bytes(rest[4..].try_into().unwrap()),
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
pub(crate) fn cstr(b: &[u8]) -> std::io::Result<(String, &[u8])> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| invalid("missing string terminator"))?;
    let s = std::str::from_utf8(&b[..end]).map_err(|_| invalid("string is not UTF-8"))?;
    Ok((s.to_owned(), &b[end + 1..]))
}

/// One backend message: its type byte and the whole frame (type, length, body).
pub(crate) struct Frame {
    pub tag: u8,
    pub bytes: BytesMut,
}

impl Frame {
    /// The body after the type byte and length.
    pub(crate) fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }
}

/// Reads one whole backend message.
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Frame> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await?;
    let len = i32::from_be_bytes(head[1..].try_into().unwrap());
    let len = usize::try_from(len).map_err(|_| invalid("negative message length"))?;
    if !(4..=MAX_LOGIN_MESSAGE).contains(&len) {
        return Err(invalid(format!("invalid message length {len}")));
    }
    let mut bytes = BytesMut::with_capacity(len + 1);
    bytes.put_slice(&head);
    bytes.resize(len + 1, 0);
    s.read_exact(&mut bytes[5..]).await?;
    Ok(Frame {
        tag: head[0],
        bytes,
    })
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
    message(b'E', &body)
}

/// AuthenticationOk.
pub(crate) fn authentication_ok() -> BytesMut {
    message(b'R', &0i32.to_be_bytes())
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
    message(b'v', &body)
}

/// The fields of an ErrorResponse or NoticeResponse body: (SQLSTATE, message).
pub(crate) fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut msg) = (String::new(), String::new());
    let mut rest = body;
    while let Some((&field, after)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let Ok((value, after)) = cstr(after) else {
            break;
        };
        match field {
            b'C' => code = value,
            b'M' => msg = value,
            _ => {}
        }
        rest = after;
    }
    (code, msg)
}

/// A big-endian i32 at `at` in `b`, if there is one.
pub(crate) fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse_startup(&1234i32.to_be_bytes()).is_err());
    }

    #[test]
    fn error_response_round_trips() {
        let e = error_response("28000", "not you");
        assert_eq!(e[0], b'E');
        assert_eq!(
            error_fields(&e[5..]),
            ("28000".into(), "redshift-creds: not you".into())
        );
        let len = i32::from_be_bytes(e[1..5].try_into().unwrap());
        assert_eq!(len as usize, e.len() - 1);
    }
}
