//! The inputs of the IAM Identity Center browser sign-in (`--idc-*`, `idc_*` keys), the keys of its entries, and the lock-free hit the front serves; the sign-in itself lives in `redshift-creds-aws`.

pub mod entries;

use crate::cache::Cache;
use crate::cache::key::CacheKey;
use crate::cache::mode::CacheMode;
use crate::cache::refresh::{self, EntryCache, SystemClock};
use crate::choice::Choice;
use crate::cli::CredArgs;
use crate::config::defaults;
use crate::env::{Env, ProcessEnv};
use crate::error::Error;
use crate::token::IdcToken;
use crate::{config_file, rules};
use entries::{Registration, Tokens};
use std::path::PathBuf;
use std::time::Duration;

/// The callback port the drivers use.
pub const DEFAULT_PORT: u16 = 7890;
/// How long a person has to sign in, in seconds.
pub const DEFAULT_RESPONSE_TIMEOUT: i64 = 120;
/// The name the sign-in page shows.
const DEFAULT_DISPLAY_NAME: &str = "redshift-creds";

/// The sign-in's inputs, checked.
#[derive(Debug, Clone)]
pub struct Idc {
    /// The Identity Center issuer (`--idc-issuer-url`, `idc_issuer_url`).
    pub issuer_url: String,
    /// The instance's region (`--idc-region`, `idc_region`).
    pub region: String,
    /// The loopback callback port (`--idc-listen-port`).
    pub port: u16,
    /// How long a person has to sign in (`--idc-response-timeout`).
    pub response_timeout: Duration,
    /// The name the sign-in page shows (`--idc-client-display-name`).
    pub display_name: String,
    /// The SSO-OIDC endpoint: `AWS_ENDPOINT_URL_SSO_OIDC`, else
    /// `AWS_ENDPOINT_URL`, else the region's.
    pub endpoint: String,
    /// What `list` and `clear` call the entries: the connection, else the issuer URL.
    pub label: String,
    pub cache: CacheMode,
    pub cache_dir: Option<PathBuf>,
    pub lock_timeout: Duration,
    pub api_timeout: Duration,
    pub refresh_margin: i64,
}

/// The issuer URL's shape: `https://HOST[/PATH]`, printable, bounded.
pub fn check_issuer_url(input: &str, value: &str) -> Result<(), Error> {
    let rule = "must be an https:// URL such as https://identitycenter.amazonaws.com/ssoins-1234567890abcdef";
    let host = value
        .strip_prefix("https://")
        .map(|r| r.split('/').next().unwrap_or(""));
    let printable = value.bytes().all(|b| b.is_ascii_graphic());
    match host {
        Some(h) if !h.is_empty() && printable && value.len() <= 1024 => Ok(()),
        _ => Err(Error::invalid(input, value, rule)),
    }
}

/// The sign-in's inputs when `--idc-issuer-url` (or the connection's
/// `idc_issuer_url`) asks for one; `None` for a password request. Any other
/// `--idc-*` flag without an issuer URL is a usage error.
pub fn wanted(cred: &CredArgs) -> Result<Option<Idc>, Error> {
    wanted_in(cred, &ProcessEnv)
}

/// [`wanted`], reading `env`.
fn wanted_in(cred: &CredArgs, env: &dyn Env) -> Result<Option<Idc>, Error> {
    // A connection the file cannot give is reported by the password path.
    let file = cred
        .name
        .as_deref()
        .and_then(|n| config_file::connection(env, n).ok())
        .map(|(c, _)| c)
        .unwrap_or_default();
    let issuer = match (&cred.idc_issuer_url, file.idc_issuer_url) {
        (Some(v), _) => Some(("--idc-issuer-url", v.clone())),
        (None, Some(v)) => Some(("idc_issuer_url", v)),
        (None, None) => None,
    };
    let Some((issuer_input, issuer_url)) = issuer else {
        let stray = [
            (cred.idc_region.is_some(), "--idc-region"),
            (cred.idc_listen_port.is_some(), "--idc-listen-port"),
            (
                cred.idc_response_timeout.is_some(),
                "--idc-response-timeout",
            ),
            (
                cred.idc_client_display_name.is_some(),
                "--idc-client-display-name",
            ),
        ];
        return match stray.iter().find(|(given, _)| *given) {
            Some((_, flag)) => Err(Error::Usage(format!("{flag} needs --idc-issuer-url"))),
            None => Ok(None),
        };
    };
    if cred.identity_center || file.identity_center == Some(true) {
        return Err(Error::Usage(format!(
            "{issuer_input} and --identity-center ask for two kinds of token; give one"
        )));
    }
    check_issuer_url(issuer_input, &issuer_url)?;
    let region = match (&cred.idc_region, file.idc_region) {
        (Some(v), _) => ("--idc-region", v.clone()),
        (None, Some(v)) => ("idc_region", v),
        (None, None) => {
            return Err(Error::Usage(
                "--idc-issuer-url needs --idc-region (the Identity Center instance's region)"
                    .into(),
            ));
        }
    };
    rules::region(region.0, &region.1)?;
    let port = match cred.idc_listen_port {
        None => DEFAULT_PORT,
        Some(p) => rules::port("--idc-listen-port", p)?,
    };
    let timeout = cred
        .idc_response_timeout
        .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    if !(1..=3600).contains(&timeout) {
        return Err(Error::invalid(
            "--idc-response-timeout",
            &timeout.to_string(),
            "must be from 1 to 3600 seconds",
        ));
    }
    let display_name = cred
        .idc_client_display_name
        .clone()
        .unwrap_or_else(|| DEFAULT_DISPLAY_NAME.to_string());
    if display_name.is_empty()
        || display_name.len() > 128
        || display_name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "--idc-client-display-name",
            &display_name,
            "must be 1 to 128 characters, none of them control characters",
        ));
    }
    Ok(Some(Idc {
        endpoint: endpoint(env, &region.1)?,
        label: cred.name.clone().unwrap_or_else(|| issuer_url.clone()),
        issuer_url,
        region: region.1,
        port,
        response_timeout: Duration::from_secs(timeout as u64),
        display_name,
        cache: cache_mode(cred, file.cache, env)?,
        cache_dir: crate::config::cache_dir(env)?,
        lock_timeout: timeout_flag("--lock-timeout", cred.lock_timeout, defaults::LOCK_TIMEOUT)?,
        api_timeout: timeout_flag("--api-timeout", cred.api_timeout, defaults::API_TIMEOUT)?,
        refresh_margin: margin(cred.refresh_margin)?,
    }))
}

fn timeout_flag(flag: &str, given: Option<i64>, default: i64) -> Result<Duration, Error> {
    let v = given.unwrap_or(default);
    rules::timeout(flag, v)?;
    Ok(Duration::from_secs(v.max(1) as u64))
}

fn margin(given: Option<i64>) -> Result<i64, Error> {
    let v = given.unwrap_or(defaults::REFRESH_MARGIN);
    if !(0..=3599).contains(&v) {
        return Err(Error::invalid(
            "--refresh-margin",
            &v.to_string(),
            "must be from 0 to 3599 seconds",
        ));
    }
    Ok(v)
}

/// `--cache`, else `REDSHIFT_CREDS_CACHE`, else the connection's `cache`, else auto.
fn cache_mode(
    cred: &CredArgs,
    file: Option<crate::choice::Parsed<CacheMode>>,
    env: &dyn Env,
) -> Result<CacheMode, Error> {
    use crate::choice::Parsed;
    if let Some(m) = cred.cache {
        return Ok(m);
    }
    if let Some(v) = env.var("REDSHIFT_CREDS_CACHE").filter(|v| !v.is_empty()) {
        return CacheMode::parse(&v)
            .map_err(|rule| Error::invalid("REDSHIFT_CREDS_CACHE", &v, rule));
    }
    match file {
        Some(Parsed::Valid(m)) => Ok(m),
        Some(Parsed::Invalid { text, rule }) => Err(Error::invalid("cache", &text, rule)),
        None => Ok(CacheMode::Auto),
    }
}

/// The SSO-OIDC endpoint of `region`, or the one the SDK's variables name.
fn endpoint(env: &dyn Env, region: &str) -> Result<String, Error> {
    for name in ["AWS_ENDPOINT_URL_SSO_OIDC", "AWS_ENDPOINT_URL"] {
        if let Some(v) = env.var(name).filter(|v| !v.is_empty()) {
            rules::endpoint_url(name, &v)?;
            return Ok(v.trim_end_matches('/').to_string());
        }
    }
    Ok(format!("https://oidc.{region}.amazonaws.com"))
}

impl Idc {
    /// The redirect URI the registration names.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The key of one of the sign-in's entries: everything that makes the
    /// registration (and so its tokens) differ; nothing secret.
    pub fn key(&self, kind: &str) -> CacheKey {
        use sha2::Digest;
        let material = serde_json::json!({
            "scheme": 1,
            "kind": kind,
            "issuer_url": self.issuer_url,
            "region": self.region,
            "endpoint": self.endpoint,
            "redirect_uri": self.redirect_uri(),
            "client_name": self.display_name,
        });
        let digest = sha2::Sha256::digest(material.to_string().as_bytes());
        CacheKey::parse(&hex::encode(&digest[..20])).expect("40 hex digits are a key")
    }

    fn cache(&self, kind: &str) -> Result<Cache, Error> {
        let mut cache = Cache::open(
            self.cache,
            self.key(kind),
            self.cache_dir.clone(),
            self.lock_timeout,
        )?;
        cache.set_label_text(&self.label);
        Ok(cache)
    }

    /// The cache of the tokens, labelled for `list`.
    pub fn token_cache(&self) -> Result<Cache, Error> {
        self.cache("token")
    }

    /// The cache of the client registration, labelled for `list`.
    pub fn registration_cache(&self) -> Result<Cache, Error> {
        self.cache("registration")
    }
}

/// What is cached for this sign-in, read once with no lock (for `doctor`):
/// the tokens and the registration, expired or not.
pub fn cached(idc: &Idc) -> (Option<Tokens>, Option<Registration>) {
    let token = idc
        .token_cache()
        .ok()
        .and_then(|mut c| c.load().ok().flatten());
    let reg = idc
        .registration_cache()
        .ok()
        .and_then(|mut c| c.load().ok().flatten());
    (token, reg)
}

/// The cached access token if it outlives the refresh margin: read once,
/// with no lock, no runtime (the front's hit). `None` is a miss.
pub fn cached_token(idc: &Idc) -> Result<Option<IdcToken>, Error> {
    let mut cache = idc.token_cache()?;
    let found: Option<Tokens> = refresh::fresh(&mut cache, &SystemClock, idc.refresh_margin)?;
    Ok(found.map(Tokens::into_access_token))
}

/// What would hand the token over as a password is refused before any sign-in.
pub fn refused(what: &str) -> Error {
    Error::Usage(format!(
        "{what} cannot be used with --idc-issuer-url: a token is not a password; use `redshift-creds get`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::testing::MapEnv;
    use clap::Parser;

    fn cred(flags: &[&str]) -> CredArgs {
        let mut argv = vec!["redshift-creds", "get"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Get(a) => a.cred,
            _ => unreachable!(),
        }
    }

    fn env(vars: &[(&str, &str)]) -> MapEnv {
        let mut map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert(
            "REDSHIFT_CREDS_CONFIG".into(),
            "/nonexistent/config.toml".into(),
        );
        map.insert("REDSHIFT_CREDS_CACHE_DIR".into(), "/tmp/cache".into());
        MapEnv(map)
    }

    const URL: &str = "https://identitycenter.amazonaws.com/ssoins-1";

    #[test]
    fn the_issuer_url_must_be_https_printable_and_bounded() {
        assert!(check_issuer_url("--idc-issuer-url", URL).is_ok());
        for bad in [
            "http://x",
            "https://",
            "https:///path",
            "https://a b",
            "ftp://x",
            "",
        ] {
            assert!(
                check_issuer_url("--idc-issuer-url", bad).is_err(),
                "{bad:?}"
            );
        }
        let long = format!("https://x/{}", "a".repeat(1100));
        assert!(check_issuer_url("--idc-issuer-url", &long).is_err());
    }

    #[test]
    fn the_endpoint_follows_the_sdks_variables_else_the_region() {
        let flags = cred(&["--idc-issuer-url", URL, "--idc-region", "eu-west-1"]);
        let at = |vars: &[(&str, &str)]| wanted_in(&flags, &env(vars)).unwrap().unwrap().endpoint;
        assert_eq!(at(&[]), "https://oidc.eu-west-1.amazonaws.com");
        assert_eq!(at(&[("AWS_ENDPOINT_URL", "http://all:1")]), "http://all:1");
        assert_eq!(
            at(&[
                ("AWS_ENDPOINT_URL", "http://all:1"),
                ("AWS_ENDPOINT_URL_SSO_OIDC", "http://oidc:2/")
            ]),
            "http://oidc:2"
        );
    }

    #[test]
    fn defaults_and_refusals() {
        let e = env(&[]);
        let idc = wanted_in(
            &cred(&["--idc-issuer-url", URL, "--idc-region", "us-east-1"]),
            &e,
        )
        .unwrap()
        .unwrap();
        assert_eq!((idc.port, idc.response_timeout.as_secs()), (7890, 120));
        assert_eq!(idc.display_name, "redshift-creds");
        assert_eq!(idc.label, URL);
        assert!(wanted_in(&cred(&[]), &e).unwrap().is_none());
        for flags in [
            &["--idc-issuer-url", URL][..],
            &["--idc-issuer-url", URL, "--idc-region", "EU"],
            &[
                "--idc-issuer-url",
                URL,
                "--idc-region",
                "us-east-1",
                "--idc-listen-port",
                "0",
            ],
            &[
                "--idc-issuer-url",
                URL,
                "--idc-region",
                "us-east-1",
                "--idc-response-timeout",
                "0",
            ],
            &["--idc-listen-port", "7000"],
        ] {
            let err = wanted_in(&cred(flags), &e).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{flags:?}: {err}");
        }
    }

    #[test]
    fn the_registration_and_token_keys_differ_and_follow_the_port() {
        let e = env(&[]);
        let a = wanted_in(
            &cred(&["--idc-issuer-url", URL, "--idc-region", "us-east-1"]),
            &e,
        )
        .unwrap()
        .unwrap();
        let b = wanted_in(
            &cred(&[
                "--idc-issuer-url",
                URL,
                "--idc-region",
                "us-east-1",
                "--idc-listen-port",
                "7891",
            ]),
            &e,
        )
        .unwrap()
        .unwrap();
        assert_ne!(a.key("token"), a.key("registration"));
        assert_ne!(
            a.key("token"),
            b.key("token"),
            "the redirect URI is registered"
        );
    }
}
