//! The fake Redshift API for bench/*.sh: [`CountingServer`] on a free loopback port until killed.
//!
//! `counting-server [--delay SECONDS] [--port-file FILE] [--password FIXED]`: writes the
//! port to FILE (atomically) or stdout; GetClusterCredentials answers after the delay with
//! `IAM:<DbUser>` and `counting-pw-<n>`, or FIXED for every call (bench/proxy.sh's role has it);
//! `GET /count` answers the number of credential calls so far.

use std::time::Duration;

use redshift_creds_testkit::counting::{Answer, CountingServer};

fn usage(why: &str) -> ! {
    eprintln!(
        "counting-server: {why}\nusage: counting-server [--delay SECONDS] [--port-file FILE] [--password FIXED]"
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut delay, mut port_file, mut password) = (0.0_f64, None, None);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            usage(&format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--delay" => {
                delay = value
                    .parse()
                    .ok()
                    .filter(|d: &f64| d.is_finite() && *d >= 0.0)
                    .unwrap_or_else(|| usage("--delay takes seconds, 0 or more"));
            }
            "--port-file" => port_file = Some(value),
            "--password" => password = Some(value),
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    let server = CountingServer::start();
    server.set_delay(Duration::from_secs_f64(delay));
    if let Some(p) = password {
        server.set_answer(Answer {
            db_password: Some(p),
            ..Answer::default()
        });
    }
    match port_file {
        Some(f) => {
            let tmp = format!("{f}.tmp");
            std::fs::write(&tmp, format!("{}\n", server.port)).expect("cannot write the port file");
            std::fs::rename(&tmp, &f).expect("cannot write the port file");
        }
        None => println!("{}", server.port),
    }
    loop {
        std::thread::park();
    }
}
