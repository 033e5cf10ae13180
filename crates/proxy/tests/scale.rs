//! Scale and idle cost, in a process of its own so the figures are the proxy's: 1000 open
//! sessions through the proxy to a fake TLS upstream, the resident memory they add, and the
//! CPU an idle proxy with open sessions burns.

mod support;

use std::time::{Duration, Instant};

use redshift_creds_proxy::{Options, client_tls};
use support::fake::{msg, read_msg};
use support::{FakeSource, start, target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SESSIONS: usize = 1000;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A TLS upstream that logs everyone in with cleartext and then holds the connection.
async fn holding_upstream(dir: &std::path::Path) -> (u16, std::path::PathBuf) {
    let (config, ca) = client_tls(dir).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut pid = 0i32;
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            pid += 1;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 8];
                s.read_exact(&mut req).await.unwrap();
                s.write_all(b"S").await.unwrap();
                let mut tls = acceptor.accept(s).await.unwrap();
                let len = tls.read_i32().await.unwrap() as usize;
                let mut body = vec![0; len - 4];
                tls.read_exact(&mut body).await.unwrap();
                tls.write_all(&msg(b'R', &3i32.to_be_bytes()))
                    .await
                    .unwrap();
                let (tag, _) = read_msg(&mut tls).await;
                assert_eq!(tag, b'p');
                let mut out = msg(b'R', &0i32.to_be_bytes());
                let mut key = pid.to_be_bytes().to_vec();
                key.extend_from_slice(&7i32.to_be_bytes());
                out.extend(msg(b'K', &key));
                out.extend(msg(b'Z', b"I"));
                tls.write_all(&out).await.unwrap();
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
            });
        }
    });
    (port, ca)
}

/// A raw client: StartupMessage, then read until ReadyForQuery; returns the open stream.
async fn open_session(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut startup = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "x"), ("database", "d")],
        &mut startup,
    )
    .unwrap();
    s.write_all(&startup).await.unwrap();
    loop {
        let (tag, body) = read_msg(&mut s).await;
        assert_ne!(tag, b'E', "{}", String::from_utf8_lossy(&body));
        if tag == b'Z' {
            return s;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_sessions_memory_and_idle_cpu() {
    let t = tempfile::tempdir().unwrap();
    let (port, ca) = holding_upstream(&t.path().join("tls")).await;
    let source = FakeSource::new("u", "p");
    let p = start(
        vec![target(port, &ca, source.clone(), None)],
        Options::default(),
    );
    let addr = p.tcp();
    // Warm up allocator and TLS state with one session, then measure.
    let warm = open_session(addr).await;
    let before = rss_kib();
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(SESSIONS);
    for chunk in 0..SESSIONS / 100 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.push(tokio::spawn(open_session(addr)));
        }
        for b in batch {
            sessions.push(b.await.unwrap());
        }
        let _ = chunk;
    }
    let took = started.elapsed();
    let after = rss_kib();
    assert_eq!(sessions.len(), SESSIONS);
    assert_eq!(source.logins(), SESSIONS + 1);
    let added_mib = (after - before) as f64 / 1024.0;
    // The figure includes this process's fake upstream (one TLS server stream per session)
    // and the raw clients: an upper bound for the proxy alone.
    eprintln!(
        "{SESSIONS} sessions opened in {took:?}; RSS {:.1} MiB -> {:.1} MiB (+{added_mib:.1} MiB, proxy + fake upstream + clients)",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    assert!(
        added_mib < 100.0,
        "{SESSIONS} sessions added {added_mib:.1} MiB"
    );

    // Idle with everything open: no polling, so (almost) no CPU.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c0 = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_ticks = cpu_ticks() - c0;
    eprintln!(
        "CPU over 2 s idle with {SESSIONS} open sessions: {idle_ticks} ticks (1 tick = 10 ms)"
    );
    assert!(
        idle_ticks <= 2,
        "idle proxy used {idle_ticks} ticks of CPU in 2 s"
    );
    drop(sessions);
    drop(warm);
}
