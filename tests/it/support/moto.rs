//! A real AWS-protocol peer: `moto_server` on loopback, with a request count read from its access log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto_server, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto_server on a free loopback port, or returns `None` (with a
    /// SKIPPED line) when it is not installed and the run is not strict.
    pub fn start() -> Option<Moto> {
        Moto::spawn(None)
    }

    /// Starts moto_server serving HTTPS with this certificate and key.
    pub fn start_tls(cert: &Path, key: &Path) -> Option<Moto> {
        Moto::spawn(Some((cert, key)))
    }

    /// moto serving HTTPS for localhost under a fresh test CA made in `dir`: the
    /// server and the CA's certificate (for SSL_CERT_FILE).
    pub fn start_tls_under_test_ca(dir: &Path) -> Option<(Moto, PathBuf)> {
        let openssl = crate::support::require_tool("openssl", "OPENSSL")?;
        let (ca, cert, key) = crate::support::pg::make_certs(&openssl, dir, dir);
        Some((Moto::start_tls(&cert, &key)?, ca))
    }

    fn spawn(tls: Option<(&Path, &Path)>) -> Option<Moto> {
        let exe = crate::support::require_tool("moto_server", "MOTO_SERVER")?;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let mut cmd = Command::new(exe);
        // Port 0: the server picks a free port and logs it, so parallel
        // tests can never race for the same one.
        cmd.args(["-H", "127.0.0.1", "-p", "0"]);
        if let Some((cert, key)) = tls {
            cmd.arg("-s").arg("-c").arg(cert).arg("-k").arg(key);
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .split(&format!("Running on {scheme}://127.0.0.1:"))
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto_server exited with {status}: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let moto = Moto {
            child,
            port,
            log,
            _dir: dir,
        };
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server does not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    /// The endpoint URL to pass as --endpoint-url.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a provisioned cluster through the Redshift query API.
    pub fn create_cluster(&self, id: &str) {
        let body = format!(
            "Action=CreateCluster&Version=2012-12-01&ClusterIdentifier={id}&NodeType=dc2.large\
             &MasterUsername=admin&MasterUserPassword=Password1"
        );
        let reply = self.post(&body);
        assert!(reply.contains("<CreateClusterResponse"), "{reply}");
    }

    /// Sends one form-encoded query-protocol request, as if signed for Redshift.
    fn post(&self, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/redshift/aws4_request, \
             SignedHeaders=host, Signature=x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// How many API requests moto has answered so far, from its access log.
    pub fn requests(&self) -> usize {
        // Give the log line a moment to land after the response.
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&self.log)
            .unwrap()
            .matches("\"POST / HTTP/1.1\"")
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
