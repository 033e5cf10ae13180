//! The `counting-server` binary as bench/*.sh use it: the port in --port-file, a fixed
//! --password for every call, the delay, and `GET /count`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The server, killed on drop.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let child = Command::new(env!("CARGO_BIN_EXE_counting-server"))
        .args(args)
        .arg("--port-file")
        .arg(&port_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no port file");
        std::thread::sleep(Duration::from_millis(20));
    };
    (Server(child, port), dir)
}

/// One HTTP/1.1 request; the response's body.
fn request(port: u16, method: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let path = if method == "GET" { "/count" } else { "/" };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

const GET: &str = "Action=GetClusterCredentials&DbUser=bench&ClusterIdentifier=c";

#[test]
fn it_counts_credential_calls_and_answers_after_the_delay() {
    let (server, _dir) = start(&["--delay", "0.3"]);
    assert_eq!(request(server.1, "GET", ""), "0\n");
    let started = Instant::now();
    let answer = request(server.1, "POST", GET);
    assert!(started.elapsed() >= Duration::from_millis(300), "the delay");
    assert!(answer.contains("<DbUser>IAM:bench</DbUser>"), "{answer}");
    assert!(
        answer.contains("<DbPassword>counting-pw-1</DbPassword>"),
        "{answer}"
    );
    request(server.1, "POST", GET);
    assert_eq!(request(server.1, "GET", ""), "2\n");
}

#[test]
fn a_fixed_password_is_every_calls_password() {
    let (server, _dir) = start(&["--password", "bench-pw"]);
    for _ in 0..2 {
        let answer = request(server.1, "POST", GET);
        assert!(answer.contains("<DbUser>IAM:bench</DbUser>"), "{answer}");
        assert!(
            answer.contains("<DbPassword>bench-pw</DbPassword>"),
            "{answer}"
        );
    }
}

#[test]
fn a_bad_option_is_refused_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_counting-server"))
        .args(["--delay", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("counting-server: --delay takes seconds"),
        "{err}"
    );
}
