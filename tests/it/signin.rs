//! The IAM Identity Center browser sign-in through the binaries: one sign-in shared by concurrent and later processes, renewal by refresh token, the headless timeout, a taken or forged callback, and `list`/`clear`, against the fake SSO-OIDC API with a `$BROWSER` that follows the redirect.

use crate::support::{Sandbox, stderr, stdout};
use redshift_creds_testkit::free_port;
use redshift_creds_testkit::sso_oidc::SsoOidcServer;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://identitycenter.amazonaws.com/ssoins-0123456789abcdef";

/// A sandbox, the fake API, a callback port and a browser stand-in.
struct Idc {
    server: SsoOidcServer,
    sb: Sandbox,
    port: String,
    browser: PathBuf,
}

impl Idc {
    fn new() -> Idc {
        let sb = Sandbox::new();
        // The person at the browser: fetches the sign-in page and follows its
        // redirect to the callback, as a browser would.
        let browser = sb.path().join("browser.sh");
        let log = sb.path().join("opened");
        std::fs::write(
            &browser,
            format!(
                "#!/bin/sh\necho \"$1\" >> '{}'\nexec curl -sS -L --max-time 30 -o /dev/null \"$1\"\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        Idc {
            server: SsoOidcServer::start(),
            sb,
            port: free_port().to_string(),
            browser,
        }
    }

    fn cmd(&self, command: &str, extra: &[&str]) -> Command {
        let mut args = vec![
            command,
            "--idc-issuer-url",
            ISSUER,
            "--idc-region",
            "eu-west-1",
            "--idc-listen-port",
            &self.port,
            "--cache",
            "file",
        ];
        args.extend_from_slice(extra);
        let mut c = self.sb.cmd(&args);
        // No AWS credentials are needed.
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_ENDPOINT_URL_SSO_OIDC", self.server.url())
            .env("BROWSER", &self.browser);
        c
    }

    /// `n` `get`s started together, and what each said.
    fn concurrent_gets(&self, n: usize) -> Vec<Output> {
        crate::support::run_all((0..n).map(|_| self.cmd("get", &[])))
    }

    fn get(&self, extra: &[&str]) -> Output {
        self.cmd("get", extra).output().unwrap()
    }

    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.sb.path().join("opened"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

/// The token `get` printed, after checking the contract's shape.
fn token(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
    assert_eq!(v["Version"], 1, "{v}");
    assert_eq!(v["TokenType"], "ACCESS_TOKEN", "{v}");
    assert!(
        v["ExpirationTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    v["Token"].as_str().unwrap().to_string()
}

/// No secret but the access token ever reaches the output.
fn assert_no_secret(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for secret in ["refresh-token-", "client-secret-", "code-"] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
}

#[test]
fn eight_concurrent_gets_make_one_sign_in_and_one_token() {
    let idc = Idc::new();
    let outs = idc.concurrent_gets(8);
    let tokens: Vec<String> = outs.iter().map(token).collect();
    assert!(tokens.iter().all(|t| t == "access-token-1"), "{tokens:?}");
    outs.iter().for_each(assert_no_secret);
    assert_eq!(idc.server.sign_ins(), 1, "one browser sign-in");
    assert_eq!(idc.server.registers(), 1, "one registration");
    assert_eq!(idc.server.code_grants(), 1, "one token");
    assert_eq!(idc.opened().len(), 1, "one browser opened");

    let reg = idc.server.last_register().unwrap();
    assert_eq!(reg["clientType"], "public");
    assert_eq!(reg["scopes"], serde_json::json!(["redshift:connect"]));
    assert_eq!(
        reg["grantTypes"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let redirect = format!("http://127.0.0.1:{}", idc.port);
    assert_eq!(reg["redirectUris"], serde_json::json!([redirect]));
    assert_eq!(reg["issuerUrl"], ISSUER);
    let url = &idc.opened()[0];
    assert!(
        url.starts_with(&format!(
            "{}/authorize?response_type=code&",
            idc.server.url()
        )),
        "{url}"
    );
    assert!(
        url.contains("&code_challenge_method=S256&scopes=redshift:connect"),
        "{url}"
    );
    // Every one of them said where to sign in, for a person on SSH.
    assert!(outs.iter().any(|o| stderr(o).contains(url.as_str())));
}

#[test]
fn a_later_process_signs_in_no_more() {
    let idc = Idc::new();
    let first = token(&idc.get(&[]));
    let second = idc.get(&[]);
    assert_eq!(token(&second), first);
    assert_eq!(idc.server.sign_ins(), 1);
    assert_eq!(idc.server.registers(), 1);
    assert!(stderr(&second).is_empty(), "{}", stderr(&second));
    assert_eq!(idc.opened().len(), 1);

    // The front alone answers it from the cache: no helper beside it.
    let bare = tempfile::tempdir().unwrap();
    let lone = bare.path().join("redshift-creds");
    std::fs::copy(crate::support::bin(), &lone).unwrap();
    let mut c = idc.cmd("get", &["--output", "password"]);
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = c
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    c = Command::new(&lone);
    c.env_clear().args(args).envs(envs);
    let alone = c.output().unwrap();
    assert!(alone.status.success(), "{}", stderr(&alone));
    assert_eq!(stdout(&alone), format!("{first}\n"));
    assert_eq!(idc.server.sign_ins(), 1);
}

#[test]
fn inside_the_margin_the_refresh_token_renews_without_a_browser() {
    let idc = Idc::new();
    idc.server.set_expires_in(600);
    assert_eq!(token(&idc.get(&[])), "access-token-1");
    // A margin wider than the token's life: inside it at once.
    let renewed = idc.get(&["--refresh-margin", "900"]);
    assert_eq!(token(&renewed), "access-token-2");
    assert_no_secret(&renewed);
    assert_eq!(idc.server.refresh_grants(), 1);
    assert_eq!(idc.server.sign_ins(), 1, "no browser");
    assert_eq!(
        idc.server.last_token_request().unwrap()["grantType"],
        "refresh_token"
    );

    // Only when the refresh is refused does it sign in again.
    idc.server.refuse_refresh(true);
    let again = idc.get(&["--refresh-margin", "900"]);
    assert_eq!(token(&again), "access-token-3");
    assert_eq!(idc.server.refresh_grants(), 2);
    assert_eq!(idc.server.sign_ins(), 2);
    assert_eq!(idc.server.registers(), 1, "the registration is kept");
    let err = stderr(&again);
    assert!(err.contains("signing in again"), "{err}");
}

#[test]
fn headless_the_url_is_on_stderr_and_it_exits_1_after_the_timeout() {
    let idc = Idc::new();
    let started = Instant::now();
    let o = idc
        .cmd("get", &["--idc-response-timeout", "2"])
        .env("BROWSER", "true")
        .output()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    let page = format!("{}/authorize?", idc.server.url());
    assert!(stderr(&o).contains(&page), "{}", stderr(&o));
    assert_failed_uncached(&idc, &o, "within 2 s");
    assert_no_secret(&o);
}

#[test]
fn a_taken_callback_port_fails_at_once_naming_it() {
    let idc = Idc::new();
    let _squatter =
        std::net::TcpListener::bind(("127.0.0.1", idc.port.parse::<u16>().unwrap())).unwrap();
    let started = Instant::now();
    let o = idc.get(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("127.0.0.1:{} is in use", idc.port)),
        "{err}"
    );
    assert!(err.contains("held by uid"), "who holds it: {err}");
    assert_eq!(idc.server.registers(), 0, "no call");
    assert!(idc.opened().is_empty(), "no browser");
}

#[test]
fn a_callback_with_another_state_is_refused() {
    let idc = Idc::new();
    idc.server.send_wrong_state("forged");
    let o = idc.get(&["--idc-response-timeout", "20"]);
    assert_failed_uncached(&idc, &o, "state does not match");
    assert_eq!(idc.server.code_grants(), 0, "the code is never redeemed");
}

/// A sign-in that failed: exit 1, `says` on stderr, nothing on stdout, nothing cached.
fn assert_failed_uncached(idc: &Idc, o: &Output, says: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    assert!(stderr(o).contains(says), "{}", stderr(o));
    assert!(stdout(o).is_empty());
    let cached: Vec<_> = idc
        .sb
        .cache_files()
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert!(cached.is_empty(), "nothing is cached: {cached:?}");
}

#[test]
fn list_shows_the_token_and_registration_and_clear_removes_them() {
    let idc = Idc::new();
    token(&idc.get(&[]));
    let list = idc.sb.run(&["list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let shown = stdout(&list);
    assert!(shown.contains("Identity Center token"), "{shown}");
    assert!(
        shown.contains("Identity Center client registration"),
        "{shown}"
    );
    assert!(shown.contains(ISSUER), "{shown}");
    assert!(!shown.contains("access-token-"), "{shown}");
    assert_no_secret(&list);

    let clear = idc.sb.run(&["clear", ISSUER]);
    assert!(clear.status.success(), "{}", stderr(&clear));
    let after = stdout(&idc.sb.run(&["list"]));
    assert!(!after.contains("Identity Center"), "{after}");
    assert_eq!(token(&idc.get(&[])), "access-token-2", "signed in again");
    assert_eq!(idc.server.sign_ins(), 2);
    assert_eq!(idc.server.registers(), 2);
}

#[test]
fn idc_flags_without_an_issuer_or_with_identity_center_are_a_usage_error() {
    let sb = Sandbox::new();
    let o = sb.run(&["get", "--idc-region", "eu-west-1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--idc-region needs --idc-issuer-url"),
        "{}",
        stderr(&o)
    );
    let o = sb.run(&[
        "get",
        "--idc-issuer-url",
        "http://x",
        "--idc-region",
        "eu-west-1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--idc-issuer-url"), "{}", stderr(&o));
    let o = sb.run(&[
        "get",
        "--idc-issuer-url",
        ISSUER,
        "--idc-region",
        "eu-west-1",
        "--identity-center",
        "--cluster-identifier",
        "c",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("two kinds of token"), "{}", stderr(&o));
}

#[test]
fn the_bare_token_is_printed_and_env_and_exec_are_refused() {
    let idc = Idc::new();
    let o = idc.get(&["--output", "password"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "access-token-1\n");
    for refused in [
        idc.get(&["--output", "env"]),
        idc.cmd("exec", &["--", "true"]).output().unwrap(),
    ] {
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains("a token is not a password"),
            "{}",
            stderr(&refused)
        );
        assert!(stdout(&refused).is_empty());
    }
    assert_eq!(idc.server.sign_ins(), 1, "refused before any sign-in");
}

#[test]
fn doctor_checks_the_issuer_the_port_and_what_is_cached() {
    let idc = Idc::new();
    let before = idc.cmd("doctor", &[]).output().unwrap();
    assert!(before.status.success(), "{}", stdout(&before));
    let text = stdout(&before);
    assert!(
        text.contains("Identity Center: issuer https://identitycenter"),
        "{text}"
    );
    assert!(
        text.contains(&format!("callback port: 127.0.0.1:{} is free", idc.port)),
        "{text}"
    );
    assert!(
        text.contains("Identity Center token: none usable cached"),
        "{text}"
    );

    token(&idc.get(&[]));
    let after = stdout(&idc.cmd("doctor", &[]).output().unwrap());
    assert!(
        after.contains("Identity Center token: cached, expires"),
        "{after}"
    );
    assert!(after.contains("renewable without a browser"), "{after}");
    assert!(
        after.contains("client registration: cached until"),
        "{after}"
    );
    assert!(
        !after.contains("access-token-") && !after.contains("secret-"),
        "{after}"
    );

    let _squatter =
        std::net::TcpListener::bind(("127.0.0.1", idc.port.parse::<u16>().unwrap())).unwrap();
    let taken = idc.cmd("doctor", &[]).output().unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stdout(&taken).contains("FAIL callback port: the callback port"),
        "{}",
        stdout(&taken)
    );

    let bad = idc.sb.run(&[
        "doctor",
        "--idc-issuer-url",
        "ftp://x",
        "--idc-region",
        "eu-west-1",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stdout(&bad).contains("FAIL Identity Center: invalid --idc-issuer-url \"ftp://x\""),
        "{}",
        stdout(&bad)
    );
}

#[test]
fn a_connection_with_the_idc_keys_signs_in_and_is_listed_by_its_name() {
    let idc = Idc::new();
    let config = idc.sb.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[connections.sso]\nidc_issuer_url = \"{ISSUER}\"\nidc_region = \"eu-west-1\"\n"),
    )
    .unwrap();
    let o = idc
        .sb
        .cmd(&[
            "get",
            "sso",
            "--idc-listen-port",
            &idc.port,
            "--cache",
            "file",
        ])
        .env("REDSHIFT_CREDS_CONFIG", &config)
        .env("AWS_ENDPOINT_URL_SSO_OIDC", idc.server.url())
        .env("BROWSER", &idc.browser)
        .output()
        .unwrap();
    assert_eq!(token(&o), "access-token-1");
    assert_eq!(idc.server.last_register().unwrap()["issuerUrl"], ISSUER);
    let list = stdout(&idc.sb.run_with_config(&config, &["list"]));
    assert!(list.contains("sso"), "{list}");
    let clear = idc.sb.run_with_config(&config, &["clear", "sso"]);
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert!(!stdout(&idc.sb.run_with_config(&config, &["list"])).contains("Identity Center"));
}

#[test]
fn a_refresh_that_rotates_nothing_keeps_the_refresh_token() {
    let idc = Idc::new();
    idc.server.set_expires_in(600);
    idc.server.without_rotation();
    assert_eq!(token(&idc.get(&[])), "access-token-1");
    assert_eq!(
        token(&idc.get(&["--refresh-margin", "900"])),
        "access-token-2"
    );
    assert_eq!(
        token(&idc.get(&["--refresh-margin", "900"])),
        "access-token-3"
    );
    assert_eq!(idc.server.refresh_grants(), 2);
    assert_eq!(idc.server.sign_ins(), 1, "never a second browser");
}

#[test]
fn tokens_shorter_than_the_margin_still_make_one_sign_in_for_concurrent_gets() {
    let idc = Idc::new();
    // 200 s tokens under the default 300 s margin: never "fresh".
    idc.server.set_expires_in(200);
    for o in idc.concurrent_gets(4) {
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(idc.server.sign_ins(), 1, "one browser for all four");
}

#[test]
fn a_failed_sign_in_serves_a_cached_token_that_is_still_valid() {
    let idc = Idc::new();
    idc.server.set_expires_in(600);
    assert_eq!(token(&idc.get(&[])), "access-token-1");
    idc.server.refuse_refresh(true);
    let o = idc
        .cmd(
            "get",
            &["--refresh-margin", "900", "--idc-response-timeout", "1"],
        )
        .env("BROWSER", "true")
        .output()
        .unwrap();
    assert_eq!(token(&o), "access-token-1");
    let err = stderr(&o);
    assert!(err.contains("no browser sign-in within 1 s"), "{err}");
    assert!(
        err.contains("using the cached Identity Center token"),
        "{err}"
    );
}
