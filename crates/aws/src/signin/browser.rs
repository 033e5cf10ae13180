//! The person's side of the sign-in: PKCE and state, the sign-in page's URL, opening it, and the one-shot loopback listener that takes the redirect.

use base64::Engine;
use redshift_creds_core::env::{Env, ProcessEnv};
use redshift_creds_core::report;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Random bytes, base64url without padding: 32 bytes give the 43 characters
/// RFC 7636 asks of a code verifier at least.
pub(crate) fn random_text(bytes: usize) -> Result<SecretString, String> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*buf),
    ))
}

/// The S256 challenge of a code verifier: SHA-256, base64url without padding.
pub(crate) fn challenge(verifier: &SecretString) -> String {
    let digest = sha2::Sha256::digest(verifier.expose_secret().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// Escapes a query value: everything but RFC 3986's unreserved characters.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a query value's `%XX` escapes and `+`; `None` when it is not UTF-8.
fn unescape(value: &str) -> Option<String> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The sign-in page: `<endpoint>/authorize` with the PKCE challenge and state.
pub(crate) fn authorize_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
    scope: &str,
) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&state={}\
         &code_challenge={}&code_challenge_method=S256&scopes={}",
        endpoint.trim_end_matches('/'),
        escape(client_id),
        escape(redirect_uri),
        escape(state),
        escape(challenge),
        // The scope is sent as the drivers send it (`redshift:connect`).
        scope
    )
}

/// Prints the sign-in page's URL on stderr (for a person on SSH to open
/// elsewhere) and opens it with `$BROWSER`, else `xdg-open`. The browser's
/// output goes nowhere: stdout carries only the contract.
pub(crate) fn open(url: &str, timeout: Duration) {
    report::note(&format!(
        "sign in to IAM Identity Center in your browser (waiting {} s): {url}",
        timeout.as_secs()
    ));
    let program = ProcessEnv
        .var_os("BROWSER")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "xdg-open".into());
    let spawned = std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reaped by a thread of its own: the browser may outlive the wait.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::debug!(error = %e, program = ?program, "no browser opened"),
    }
}

/// Why the callback gave no code.
#[derive(Debug)]
pub(crate) enum NoCode {
    /// Nothing arrived in time.
    TimedOut,
    /// A redirect came with another state: not this sign-in's.
    WrongState,
    /// The sign-in page sent back an error.
    Refused(String),
    /// The listener failed.
    Io(std::io::Error),
}

/// The one-shot listener on `127.0.0.1:PORT`, bound before anything else so
/// a taken port fails the run at once.
pub(crate) struct Callback {
    listener: TcpListener,
    port: u16,
}

impl Callback {
    /// Binds the loopback port the registration names; never another one.
    pub(crate) fn bind(port: u16) -> Result<Callback, String> {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => Ok(Callback { listener, port }),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let who = port_owner(port)
                    .map(|w| format!(" (held by {w})"))
                    .unwrap_or_default();
                Err(format!(
                    "the callback port 127.0.0.1:{port} is in use{who}; free it or pass another --idc-listen-port"
                ))
            }
            Err(e) => Err(format!("cannot listen on 127.0.0.1:{port}: {e}")),
        }
    }

    /// The redirect URI the registration and the sign-in page name.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for the redirect that carries `state`, answers it, and returns
    /// its code. Requests without a code or state (a favicon) are answered
    /// 404 and waited past.
    pub(crate) fn wait(
        self,
        state: &SecretString,
        timeout: Duration,
    ) -> Result<SecretString, NoCode> {
        let deadline = Instant::now() + timeout;
        self.listener.set_nonblocking(true).map_err(NoCode::Io)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoCode::TimedOut);
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(done) = answer(stream, state, left) {
                        return done;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
                Err(e) => return Err(NoCode::Io(e)),
            }
        }
    }
}

/// Reads one request and answers it. `None`: not a sign-in redirect, keep waiting.
fn answer(
    mut stream: TcpStream,
    state: &SecretString,
    left: Duration,
) -> Option<Result<SecretString, NoCode>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(left.min(Duration::from_secs(5))));
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let target = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| unescape(v))
    };
    let (code, got_state, error) = (param("code"), param("state"), param("error"));
    if got_state.is_none() && code.is_none() && error.is_none() {
        reply(&mut stream, "404 Not Found", "Not found.");
        return None;
    }
    if got_state.as_deref() != Some(state.expose_secret()) {
        reply(
            &mut stream,
            "400 Bad Request",
            "This sign-in answer is not for redshift-creds' request (its state does not match).",
        );
        return Some(Err(NoCode::WrongState));
    }
    if let Some(e) = error {
        reply(
            &mut stream,
            "400 Bad Request",
            "The sign-in failed; see the terminal.",
        );
        return Some(Err(NoCode::Refused(e)));
    }
    match code.filter(|c| redshift_creds_core::signin::entries::check_opaque(c, 4096).is_ok()) {
        Some(c) => {
            reply(
                &mut stream,
                "200 OK",
                "Signed in to redshift-creds. You can close this tab.",
            );
            Some(Ok(SecretString::from(c)))
        }
        None => {
            reply(
                &mut stream,
                "400 Bad Request",
                "The answer has no usable code.",
            );
            Some(Err(NoCode::Refused("no usable code".into())))
        }
    }
}

fn reply(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>redshift-creds</title></head>\
         <body><p>{text}</p></body></html>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Who listens on `127.0.0.1:port` (or any address), as the socket table
/// tells: the uid, and the process when it is visible to us.
fn port_owner(port: u16) -> Option<String> {
    let mut found = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A: LISTEN), uid, inode
            let (Some(local), Some(st), Some(uid), Some(inode)) =
                (f.get(1), f.get(3), f.get(7), f.get(9))
            else {
                continue;
            };
            let listening = *st == "0A";
            let same_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port);
            if listening && same_port {
                found = Some((uid.to_string(), inode.to_string()));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let (uid, inode) = found?;
    let process = process_of(&inode)
        .map(|(pid, name)| format!(", process {pid} ({})", report::escape(&name)))
        .unwrap_or_default();
    Some(format!("uid {uid}{process}"))
}

/// The process holding socket `inode`, when /proc lets us see its descriptors.
fn process_of(inode: &str) -> Option<(u32, String)> {
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()));
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some((pid, name.trim().to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        let v = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifiers_are_long_enough_and_differ() {
        let a = random_text(32).unwrap();
        let b = random_text(32).unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn the_url_escapes_what_it_carries() {
        let url = authorize_url(
            "https://oidc.eu-west-1.amazonaws.com/",
            "id&x",
            "http://127.0.0.1:7890",
            "st",
            "ch",
            "redshift:connect",
        );
        assert_eq!(
            url,
            "https://oidc.eu-west-1.amazonaws.com/authorize?response_type=code&client_id=id%26x\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A7890&state=st&code_challenge=ch\
             &code_challenge_method=S256&scopes=redshift:connect"
        );
        assert_eq!(unescape("a%26b+c").as_deref(), Some("a&b c"));
    }
}
