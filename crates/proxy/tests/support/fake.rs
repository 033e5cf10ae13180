//! Fake upstreams: a TCP server that refuses TLS and records what it gets after, and a TLS
//! server that speaks just enough PostgreSQL to log a client in with a chosen auth request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

pub use redshift_creds_testkit::redshift_idp::{message as msg, ready_for_query};

/// A server answering `N` to SSLRequest; `after` gets every byte received after the `N`.
pub async fn no_tls_server() -> (u16, Arc<Mutex<Option<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let after = Arc::new(Mutex::new(None));
    let seen = after.clone();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = [0u8; 8];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(req, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest first");
        s.write_all(b"N").await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        *seen.lock().unwrap() = Some(rest);
    });
    (port, after)
}

pub async fn read_msg<S: AsyncRead + Unpin>(s: &mut S) -> (u8, Vec<u8>) {
    let tag = s.read_u8().await.unwrap();
    let len = s.read_i32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    (tag, body)
}

/// After a successful login: parameters, key data, ReadyForQuery; then answers every simple
/// query with one text row `row`, until Terminate.
pub async fn serve_queries<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, row: &str) {
    let mut out = msg(b'R', &0i32.to_be_bytes());
    let params = [
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("DateStyle", "ISO, MDY"),
    ];
    out.extend(ready_for_query(&params, [0, 0, 0, 42, 0, 0, 0, 7]));
    s.write_all(&out).await.unwrap();
    loop {
        let (tag, _) = read_msg(s).await;
        if tag != b'Q' {
            return;
        }
        let mut desc = BytesMut::new();
        desc.put_i16(1);
        desc.put_slice(b"result\0");
        desc.put_i32(0);
        desc.put_i16(0);
        desc.put_i32(25);
        desc.put_i16(-1);
        desc.put_i32(-1);
        desc.put_i16(0);
        let mut row_b = BytesMut::new();
        row_b.put_i16(1);
        row_b.put_i32(i32::try_from(row.len()).unwrap());
        row_b.put_slice(row.as_bytes());
        let mut out = msg(b'T', &desc);
        out.extend(msg(b'D', &row_b));
        out.extend(msg(b'C', b"SELECT 1\0"));
        out.extend(msg(b'Z', b"I"));
        s.write_all(&out).await.unwrap();
    }
}

/// The startup parameters of a StartupMessage body (with its protocol version).
pub fn startup_params(body: &[u8]) -> Vec<(String, String)> {
    redshift_creds_testkit::redshift_idp::startup_params(&body[4..])
}
