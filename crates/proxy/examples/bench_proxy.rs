//! A bare proxy for bench/proxy.sh when `redshift-creds proxy` is not built: the engine with a
//! fixed password, so the benchmark measures the relay and the upstream login alone.
//!
//!     BENCH_PROXY_PASSWORD=... bench_proxy LISTEN HOST PORT CA_FILE USER
//!
//! The password comes from the environment, never from argv. Prints the same
//! `listening on ADDR for bench` line as the CLI and serves until SIGINT or SIGTERM.

use std::sync::Arc;

use redshift_creds_proxy::{
    Listen, Login, Options, PasswordSource, SourceError, SslMode, Target, Upstream, serve,
    upstream_tls,
};
use secrecy::SecretString;

struct Fixed {
    user: String,
    password: String,
}

impl PasswordSource for Fixed {
    fn login(&self, _fresh: bool) -> Result<Login, SourceError> {
        Ok(Login {
            user: self.user.clone(),
            password: SecretString::from(self.password.clone()),
            expiration: 4_000_000_000,
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, host, port, ca, user] = args.as_slice() else {
        return Err("usage: BENCH_PROXY_PASSWORD=... bench_proxy LISTEN HOST PORT CA USER".into());
    };
    let password = std::env::var("BENCH_PROXY_PASSWORD")?;
    let target = Target {
        name: "bench".to_owned(),
        listen: vec![Listen::Tcp(listen.parse()?)],
        upstream: Upstream {
            host: host.clone(),
            port: port.parse()?,
            tls: upstream_tls(SslMode::VerifyFull, Some(std::path::Path::new(ca)))?,
            db_name: None,
        },
        source: Arc::new(Fixed {
            user: user.clone(),
            password,
        }),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(vec![target], Options::default()))?;
    Ok(())
}
