//! How the proxy behaves through the binary: one API call for many clients, AWS
//! failures reaching the client and recovery, shutdown, listen values, `--all`.

use super::{Proxy, Raw, Rig, WHO, WHO_ANSWER};
use crate::support::counting::Behaviour;
use crate::support::{free_port, stderr, stdout};
use std::time::Duration;

#[test]
fn two_hundred_clients_at_once_share_one_api_call() {
    let Some(rig) = Rig::start_alone(230) else {
        return;
    };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let addr = proxy.tcp();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut c = Raw::connect(addr, &format!("client{i}"), "postgres")?;
                c.query(WHO)
            })
        })
        .collect();
    let mut ok = 0;
    for c in clients {
        match c.join().unwrap() {
            Ok(rows) if rows == [WHO_ANSWER] => ok += 1,
            other => panic!("{other:?}\nproxy: {}", proxy.stderr()),
        }
    }
    assert_eq!(ok, 200);
    assert_eq!(rig.aws.calls(), 1, "one GetClusterCredentials for all");
}

#[test]
fn while_aws_fails_the_client_gets_the_message_and_then_the_proxy_recovers() {
    let Some(rig) = Rig::start() else { return };
    rig.aws.set_behaviour(Behaviour::AccessDenied);
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let err = Raw::connect(proxy.tcp(), "anyone", "postgres")
        .err()
        .expect("no password, no session");
    assert_eq!(err.code, "28000", "{err:?}");
    assert!(
        err.message.starts_with(
            "redshift-creds: GetClusterCredentials failed for cluster \"examplecluster\", \
             user \"alice\" in us-east-1: access denied"
        ),
        "{err:?}"
    );
    rig.aws.set_behaviour(Behaviour::Throttle);
    let err = Raw::connect(proxy.tcp(), "anyone", "postgres")
        .err()
        .unwrap();
    assert_eq!(err.code, "08001", "{err:?}");
    assert!(err.message.contains("throttling"), "{err:?}");

    rig.aws.set_behaviour(Behaviour::Ok);
    let mut c = Raw::connect(proxy.tcp(), "anyone", "postgres").unwrap();
    assert_eq!(c.query(WHO).unwrap(), [WHO_ANSWER]);
    assert!(
        !proxy.stderr().contains("proxy-test-pw"),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn sigterm_waits_for_an_open_session_then_exits_0() {
    let Some(rig) = Rig::start() else { return };
    let mut proxy = rig.proxy(&["--listen", "127.0.0.1:0", "--shutdown-timeout", "20"]);
    let mut c = Raw::connect(proxy.tcp(), "anyone", "postgres").unwrap();
    proxy.terminate();
    assert_eq!(
        proxy.wait_exit(Duration::from_millis(700)),
        None,
        "the proxy waits for the open session: {}",
        proxy.stderr()
    );
    assert_eq!(
        c.query(WHO).unwrap(),
        [WHO_ANSWER],
        "the session still works"
    );
    assert!(
        std::net::TcpStream::connect(proxy.tcp()).is_err(),
        "no new connections after SIGTERM"
    );
    drop(c);
    assert_eq!(
        proxy.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn a_non_loopback_listen_address_is_a_usage_error() {
    let aws = crate::support::counting::CountingServer::start();
    let sb = crate::support::Sandbox::new();
    let url = aws.url();
    let mut args = vec!["proxy"];
    args.extend(crate::support::cred_args(&url, &["--host", "127.0.0.1"]));
    for bad in ["10.0.0.1:5439", "localhost:5439", "unix:"] {
        let mut a = args.clone();
        a.extend(["--listen", bad]);
        let o = sb.run(&a);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "redshift-creds: error: invalid --listen \"{bad}\": "
            )),
            "{err}"
        );
    }
    assert_eq!(aws.calls(), 0);
    let o = sb.run(&{
        let mut a = args.clone();
        a.extend(["--listen", "10.0.0.1:5439"]);
        a
    });
    assert!(stderr(&o).contains("only loopback"), "{}", stderr(&o));
}

#[test]
fn a_taken_port_is_exit_1_naming_the_address() {
    let aws = crate::support::counting::CountingServer::start();
    let sb = crate::support::Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let url = aws.url();
    let mut args = vec!["proxy"];
    args.extend(crate::support::cred_args(&url, &["--host", "127.0.0.1"]));
    args.extend(["--listen", &addr]);
    let o = sb.run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("redshift-creds: error: cannot listen on {addr}: ")),
        "{}",
        stderr(&o)
    );
    assert_eq!(aws.calls(), 0, "no password is fetched before serving");
}

#[test]
fn all_serves_every_connection_with_listen_in_one_process() {
    let Some(rig) = Rig::start() else { return };
    let config = rig.sb.path().join("config.toml");
    let (port_a, port_b) = (free_port(), free_port());
    let sock = rig.sb.path().join("sock");
    let connection = |name: &str, db: &str, listen: &str| {
        format!(
            "[connections.{name}]\ncluster_identifier = \"examplecluster\"\ndb_user = \"alice\"\n\
             db_name = \"{db}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\ncache = \"file\"\n\
             host = \"127.0.0.1\"\nport = {}\nsslmode = \"verify-full\"\nsslrootcert = \"{}\"\n\
             listen = [{listen}]\n",
            rig.url,
            rig.pg.port,
            rig.pg.ca_cert.display()
        )
    };
    let text = connection("a", "postgres", &format!("\"127.0.0.1:{port_a}\""))
        + &connection(
            "b",
            "template1",
            &format!("\"127.0.0.1:{port_b}\", \"unix:{}\"", sock.display()),
        )
        + "[connections.c]\ncluster_identifier = \"other\"\n";
    std::fs::write(&config, text).unwrap();
    let mut cmd = rig.sb.cmd(&["proxy", "--all"]);
    cmd.env("REDSHIFT_CREDS_CONFIG", &config);
    let proxy = Proxy::spawn(cmd);
    let names: Vec<&str> = proxy.listening.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "b"], "{}", proxy.stderr());
    let addr = |p: u16| format!("127.0.0.1:{p}").parse().unwrap();
    let mut a = Raw::connect(addr(port_a), "x", "postgres").unwrap();
    let mut b = Raw::connect(addr(port_b), "x", "template1").unwrap();
    assert_eq!(a.query(WHO).unwrap(), [WHO_ANSWER]);
    assert_eq!(b.query("select current_database()").unwrap(), ["template1"]);
    // b's passwords are for template1 only (its db_name): another database is refused.
    let err = Raw::connect(addr(port_b), "x", "postgres").err().unwrap();
    assert!(err.message.contains("template1"), "{err:?}");
    assert!(
        proxy.listening[2].0 == format!("{}/.s.PGSQL.{port_b}", sock.display()),
        "{:?}",
        proxy.listening
    );
    assert_eq!(rig.aws.calls(), 2, "one credential per connection");
}

#[test]
fn inside_the_refresh_margin_a_new_session_does_not_wait_for_aws() {
    let Some(rig) = Rig::start() else { return };
    // 900-second passwords with an 899-second margin: the first one enters the margin
    // a second after it is fetched.
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0", "--refresh-margin", "899"]);
    let mut first = Raw::connect(proxy.tcp(), "x", "postgres").unwrap();
    assert_eq!(rig.aws.calls(), 1);
    std::thread::sleep(Duration::from_millis(2100));
    rig.aws.set_delay(Duration::from_secs(4));
    let started = std::time::Instant::now();
    let mut second = Raw::connect(proxy.tcp(), "x", "postgres").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the session waited {:?} for AWS",
        started.elapsed()
    );
    assert_eq!(second.query(WHO).unwrap(), [WHO_ANSWER]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while rig.aws.calls() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rig.aws.calls(), 2, "refreshed in the background");
    assert_eq!(
        first.query(WHO).unwrap(),
        [WHO_ANSWER],
        "open sessions are untouched"
    );
}

#[test]
fn client_tls_makes_a_private_ca_and_prints_its_path() {
    let Some(rig) = Rig::start() else { return };
    let xdg = rig.sb.path().join("xdg");
    let args = rig.args(&["--listen", "127.0.0.1:0", "--client-tls"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = rig.sb.cmd(&args);
    cmd.env("XDG_CONFIG_HOME", &xdg);
    let proxy = Proxy::spawn(cmd);
    let dir = xdg.join("redshift-creds/proxy-tls");
    let ca = dir.join("ca.crt");
    assert!(
        proxy
            .stderr()
            .contains(&format!("sslrootcert={}", ca.display())),
        "{}",
        proxy.stderr()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let o = std::process::Command::new(&rig.pg.psql)
        .env_clear()
        .env("HOME", rig.sb.path())
        .arg("-X")
        .arg(format!(
            "host=localhost port={} dbname=postgres user=x sslmode=verify-full sslrootcert={}",
            proxy.tcp().port(),
            ca.display()
        ))
        .args(["-Atc", "select current_user"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "IAM:alice\n");
}
