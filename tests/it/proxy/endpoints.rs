//! The proxy as a service through the binary: the `--http` endpoints while serving, at
//! `--max-connections` and while draining, `/metrics` read by Prometheus' own parser, and
//! `POST /quitquitquit` ending the proxy with exit 0 and 57P01 for the sessions left.

use super::{Proxy, Raw, Rig, WHO, WHO_ANSWER};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The proxy on a free loopback port with its HTTP endpoints on another, then `extra`;
/// and where the endpoints are.
fn with_http(rig: &Rig, extra: &[&str]) -> (Proxy, SocketAddr) {
    let mut args = vec!["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let proxy = rig.proxy(&args);
    let h = http_addr(&proxy);
    (proxy, h)
}

/// The address of the `serving health checks on http://ADDR` line.
fn http_addr(p: &Proxy) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(a) = p
            .stderr()
            .lines()
            .find_map(|l| l.strip_prefix("serving health checks on http://"))
        {
            return a.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no http line: {}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request; the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: probe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out:?}"));
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn status(addr: SocketAddr, path: &str) -> u16 {
    http(addr, "GET", path).0
}

/// `/metrics` through `prometheus_client.parser`: each sample as `name{labels} value`.
fn scrape(addr: SocketAddr) -> Vec<String> {
    let (code, body) = http(addr, "GET", "/metrics");
    assert_eq!(code, 200);
    let python = std::env::var_os("PYDRIVERS").map_or_else(
        || concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-drivers/bin/python").into(),
        std::path::PathBuf::from,
    );
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       print(f'{s.name}{{{labels}}} {s.value}')\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the drivers venv's python (tests/run.sh makes it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "prometheus_client refused it: {}\n{body}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn sample(samples: &[String], key: &str) -> f64 {
    samples
        .iter()
        .find_map(|s| s.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {samples:#?}"))
}

#[test]
fn endpoints_while_serving_at_the_limit_and_while_draining() {
    let Some(rig) = Rig::start() else { return };
    let (mut proxy, h) = with_http(
        &rig,
        &["--max-connections", "2", "--min-shutdown-delay", "3"],
    );
    let addr = proxy.tcp();
    for path in ["/startup", "/liveness", "/readiness"] {
        assert_eq!(status(h, path), 200, "{path}");
    }
    assert_eq!(status(h, "/nope"), 404);
    assert_eq!(status(h, "/quitquitquit"), 405, "GET does not quit");

    let mut a = Raw::connect(addr, "a", "postgres").unwrap();
    let b = Raw::connect(addr, "b", "postgres").unwrap();
    assert_eq!(a.query(WHO).unwrap(), [WHO_ANSWER]);
    assert_eq!(status(h, "/readiness"), 503, "at --max-connections");
    let err = Raw::connect(addr, "c", "postgres")
        .err()
        .expect("the third is refused");
    assert_eq!(err.code, "53300", "{err:?}");
    assert_eq!(
        err.message,
        "redshift-creds: too many connections for redshift-creds proxy (2)"
    );
    let m = scrape(h);
    assert_eq!(sample(&m, "redshift_creds_proxy_open_connections{}"), 2.0);
    assert_eq!(
        sample(&m, "redshift_creds_proxy_refused_total{reason=limit}"),
        1.0
    );
    assert_eq!(
        sample(&m, "redshift_creds_proxy_refused_total{reason=uid}"),
        0.0
    );
    assert_eq!(sample(&m, "redshift_creds_credential_fetches_total{}"), 1.0);
    let expiry = sample(
        &m,
        "redshift_creds_credential_expiry_timestamp_seconds{target=examplecluster}",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now, "expires in the future: {expiry}");
    drop(b);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(h, "/readiness"), 200, "a slot is free again");
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    let m = scrape(h);
    assert_eq!(sample(&m, "redshift_creds_proxy_connections_total{}"), 2.0);
    assert_eq!(
        sample(&m, "redshift_creds_proxy_login_failures_total{}"),
        0.0
    );
    assert!(sample(&m, "redshift_creds_proxy_bytes_total{direction=in}") > 0.0);
    assert!(sample(&m, "redshift_creds_proxy_bytes_total{direction=out}") > 0.0);

    // SIGTERM: readiness says 503 at once, but for the minimum delay sessions still start.
    proxy.terminate();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(h, "/readiness"), 503, "draining");
    assert_eq!(status(h, "/liveness"), 200);
    let mut c = Raw::connect(addr, "late", "postgres").expect("accepted during the delay");
    assert_eq!(c.query(WHO).unwrap(), [WHO_ANSWER]);
    drop(c);
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn quitquitquit_exits_0_and_tells_open_sessions_57p01() {
    let Some(rig) = Rig::start() else { return };
    let (mut proxy, h) = with_http(&rig, &["--shutdown-timeout", "1"]);
    let mut open = Raw::connect(proxy.tcp(), "stays", "postgres").unwrap();
    assert_eq!(open.query(WHO).unwrap(), [WHO_ANSWER]);
    let started = Instant::now();
    assert_eq!(http(h, "POST", "/quitquitquit").0, 200);
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for the session"
    );
    // Nothing was asked: the proxy's ErrorResponse is waiting to be read, then the end.
    let err = loop {
        match open.read() {
            Ok((b'E', data)) => break super::parse_error(&data),
            Ok(_) => {}
            Err(e) => panic!("no ErrorResponse before the end: {e}\n{}", proxy.stderr()),
        }
    };
    assert_eq!(err.code, "57P01", "{err:?}\n{}", proxy.stderr());
    assert!(open.read().is_err(), "then the connection is closed");
    assert!(proxy.stderr().contains("POST /quitquitquit received"));
}
