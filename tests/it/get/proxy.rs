//! `get` behind a corporate proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY honoured as the AWS CLI does, through a real tinyproxy on loopback.

use crate::support::counting::CountingServer;
use crate::support::moto::Moto;
use crate::support::{Sandbox, free_port, get_args, password, stderr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A tinyproxy on a free loopback port with its own config and log.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start() -> Option<Tinyproxy> {
        let bin = crate::support::require_tool("tinyproxy", "TINYPROXY")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\n\
                 MaxClients 20\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
                log.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(bin)
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Tinyproxy {
                    child,
                    port,
                    log,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tinyproxy did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests the proxy relayed whose request line starts with `method`.
    fn requests(&self, method: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| {
                l.contains("Request (file descriptor") && l.contains(&format!(": {method} "))
            })
            .count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_endpoint_goes_through_http_proxy_unless_no_proxy_names_it() {
    let Some(proxy) = Tinyproxy::start() else {
        return;
    };
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb
        .cmd(&get_args(&url, &[]))
        .env("http_proxy", proxy.url())
        .output()
        .unwrap();
    assert_eq!(password(&out), "counting-pw-1");
    assert!(
        proxy.requests("POST") >= 1,
        "the call went through the proxy"
    );

    let before = proxy.requests("POST");
    let sb = Sandbox::new();
    let out = sb
        .cmd(&get_args(&url, &[]))
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", "localhost,127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(password(&out), "counting-pw-2");
    assert_eq!(proxy.requests("POST"), before, "NO_PROXY went direct");
    assert_eq!(server.calls(), 2);
}

#[test]
fn an_https_endpoint_goes_through_https_proxy_by_connect() {
    let Some(proxy) = Tinyproxy::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((moto, ca)) = Moto::start_tls_under_test_ca(dir.path()) else {
        return;
    };
    let url = format!("https://localhost:{}", moto.port);
    let sb = Sandbox::new();
    let out = sb
        .cmd(&get_args(&url, &["--api-timeout", "10"]))
        .env("SSL_CERT_FILE", &ca)
        .env("HTTPS_PROXY", proxy.url())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("cluster was not found"),
        "moto's own answer came back over TLS through the proxy: {err}"
    );
    assert!(proxy.requests("CONNECT") >= 1, "tunnelled by CONNECT");
    assert_eq!(proxy.requests("POST"), 0, "the proxy never saw the request");
}
