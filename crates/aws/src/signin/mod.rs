//! The IAM Identity Center browser sign-in (the Redshift drivers' `BrowserIdcAuthPlugin`): its inputs, and one sign-in shared by every process through the cache, a refresh without a browser, and a sign-in lock only sign-ins take.
//!
//! The order, for a token that is needed:
//! 1. a cached access token that outlives the refresh margin: used, no lock;
//! 2. a cached refresh token: CreateToken (`refresh_token`) under the
//!    token's refresh lock, no browser;
//! 3. otherwise the sign-in lock (`<key>.signin.lock`), held while a person
//!    signs in: a second caller waits there (up to the response timeout),
//!    then finds the first one's token. A cache hit never takes it.

mod api;
mod browser;
pub(crate) mod entries;

use api::Oidc;
use entries::{Registration, Tokens};
use redshift_creds_core::cache::key::CacheKey;
use redshift_creds_core::cache::mode::CacheMode;
use redshift_creds_core::cache::refresh::{self, EntryCache, SystemClock};
use redshift_creds_core::cache::{Cache, RefreshLock};
use redshift_creds_core::choice::Choice;
use redshift_creds_core::cli::CredArgs;
use redshift_creds_core::config::defaults;
use redshift_creds_core::env::{Env, ProcessEnv};
use redshift_creds_core::error::{AwsFailure, Error, display_value};
use redshift_creds_core::output::{self, OutputFormat};
use redshift_creds_core::private_fs::SafeDir;
use redshift_creds_core::token::{IdcToken, TokenType};
use redshift_creds_core::{config_file, report, rules};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::time::Duration;

/// The callback port the drivers use.
pub(crate) const DEFAULT_PORT: u16 = 7890;
/// How long a person has to sign in, in seconds.
pub(crate) const DEFAULT_RESPONSE_TIMEOUT: i64 = 120;
/// The name the sign-in page shows.
const DEFAULT_DISPLAY_NAME: &str = "redshift-creds";

/// The sign-in's inputs, checked.
#[derive(Debug, Clone)]
pub(crate) struct Idc {
    pub issuer_url: String,
    pub region: String,
    pub port: u16,
    pub response_timeout: Duration,
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
pub(crate) fn check_issuer_url(input: &str, value: &str) -> Result<(), Error> {
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
pub(crate) fn wanted(cred: &CredArgs) -> Result<Option<Idc>, Error> {
    let env = ProcessEnv;
    // A connection the file cannot give is reported by the password path.
    let file = cred
        .name
        .as_deref()
        .and_then(|n| config_file::connection(&env, n).ok())
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
        endpoint: endpoint(&env, &region.1)?,
        label: cred.name.clone().unwrap_or_else(|| issuer_url.clone()),
        issuer_url,
        region: region.1,
        port,
        response_timeout: Duration::from_secs(timeout as u64),
        display_name,
        cache: cache_mode(cred, file.cache)?,
        cache_dir: redshift_creds_core::config::cache_dir(&env)?,
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
    file: Option<redshift_creds_core::choice::Parsed<CacheMode>>,
) -> Result<CacheMode, Error> {
    use redshift_creds_core::choice::Parsed;
    if let Some(m) = cred.cache {
        return Ok(m);
    }
    if let Some(v) = ProcessEnv
        .var("REDSHIFT_CREDS_CACHE")
        .filter(|v| !v.is_empty())
    {
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
    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The key of one of the sign-in's entries: everything that makes the
    /// registration (and so its tokens) differ; nothing secret.
    fn key(&self, kind: &str) -> CacheKey {
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

    fn token_cache(&self) -> Result<Cache, Error> {
        self.cache("token")
    }

    fn registration_cache(&self) -> Result<Cache, Error> {
        self.cache("registration")
    }

    fn failure(&self, kind: AwsFailure, reason: String) -> Error {
        Error::Aws {
            api: "the Identity Center sign-in",
            target: format!("issuer {}", display_value(&self.issuer_url)),
            kind,
            reason,
            hint: None,
        }
    }
}

/// Whether the callback port can be listened on now (for `doctor`).
pub(crate) fn port_is_free(port: u16) -> Result<(), String> {
    browser::Callback::bind(port).map(drop)
}

/// What is cached for this sign-in, read once with no lock (for `doctor`):
/// the tokens and the registration, expired or not.
pub(crate) fn cached(idc: &Idc) -> (Option<Tokens>, Option<Registration>) {
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

/// An access token that outlives the refresh margin: cached, renewed with
/// the refresh token, or from a browser sign-in.
pub(crate) fn access_token(idc: &Idc) -> Result<Tokens, Error> {
    let mut cache = idc.token_cache()?;
    if let Some(t) = refresh::fresh::<Tokens>(&mut cache, &SystemClock, idc.refresh_margin)? {
        tracing::debug!(expiration = t.expiration, "token cache hit");
        return Ok(t);
    }
    let oidc = Oidc::new(&idc.endpoint, &idc.region, &idc.issuer_url, idc.api_timeout);
    if let Some(t) = renew(idc, &mut cache, &oidc)? {
        return Ok(t);
    }
    sign_in(idc, &mut cache, &oidc)
}

/// Renews with the cached refresh token under the token's refresh lock;
/// `None` when there is none or it was refused (then a sign-in follows).
fn renew(idc: &Idc, cache: &mut Cache, oidc: &Oidc) -> Result<Option<Tokens>, Error> {
    let refreshable = |t: &Option<Tokens>| t.as_ref().is_some_and(|t| t.refresh_token.is_some());
    let found: Option<Tokens> = cache.load()?;
    if !refreshable(&found) {
        return Ok(None);
    }
    let _lock = EntryCache::<Tokens>::lock(cache)?;
    // Another process may have renewed it (or signed in) meanwhile.
    if let Some(t) = refresh::fresh::<Tokens>(cache, &SystemClock, idc.refresh_margin)? {
        return Ok(Some(t));
    }
    let current: Option<Tokens> = cache.load()?;
    let Some(refresh_token) = current.and_then(|t| t.refresh_token) else {
        return Ok(None);
    };
    let mut regs = idc.registration_cache()?;
    let Some(reg) = refresh::fresh::<Registration>(&mut regs, &SystemClock, 60)? else {
        return Ok(None);
    };
    match oidc.renew(&reg, &refresh_token) {
        Ok(t) => {
            tracing::debug!(
                expiration = t.expiration,
                "token renewed with the refresh token"
            );
            cache.save(&t)?;
            Ok(Some(t))
        }
        Err(e) => {
            report::warn(&format!("{e}; signing in again"));
            Ok(None)
        }
    }
}

/// The sign-in lock of a token key: only sign-ins take it, for as long as a
/// person may take, plus a little. `None` without a cache (nothing to share).
fn sign_in_lock(idc: &Idc, cache: &Cache) -> Result<Option<RefreshLock>, Error> {
    let (Some(dir), false) = (
        &idc.cache_dir,
        matches!(cache.store(), redshift_creds_core::cache::Store::None),
    ) else {
        return Ok(None);
    };
    let dir = SafeDir::ensure_private(dir).map_err(|why| Error::CacheUnavailable {
        mode: "file",
        reason: why,
    })?;
    let name = format!("{}.signin", idc.key("token"));
    match RefreshLock::acquire_named(&dir, &name, idc.response_timeout + Duration::from_secs(30))? {
        Ok(lock) => Ok(Some(lock)),
        Err(why) => {
            report::warn(&format!(
                "cannot take the sign-in lock ({why}); signing in without it"
            ));
            Ok(None)
        }
    }
}

/// The browser sign-in, under the sign-in lock; a caller that waited there
/// finds the token the holder got.
fn sign_in(idc: &Idc, cache: &mut Cache, oidc: &Oidc) -> Result<Tokens, Error> {
    let _lock = sign_in_lock(idc, cache)?;
    if let Some(t) = refresh::fresh::<Tokens>(cache, &SystemClock, idc.refresh_margin)? {
        tracing::debug!("another process signed in");
        return Ok(t);
    }
    // The port first: a taken port fails before any call.
    let callback =
        browser::Callback::bind(idc.port).map_err(|why| idc.failure(AwsFailure::NotSent, why))?;
    let redirect_uri = callback.redirect_uri();
    let mut regs = idc.registration_cache()?;
    let outlives = idc.response_timeout.as_secs() as i64 + 60;
    let (reg, new_reg) = match refresh::fresh::<Registration>(&mut regs, &SystemClock, outlives)? {
        Some(r) => (r, false),
        None => (oidc.register(&idc.display_name, &redirect_uri)?, true),
    };
    let state = browser::random_text(32).map_err(|why| idc.failure(AwsFailure::NotSent, why))?;
    let verifier = browser::random_text(32).map_err(|why| idc.failure(AwsFailure::NotSent, why))?;
    let url = browser::authorize_url(
        &idc.endpoint,
        &reg.client_id,
        &redirect_uri,
        state.expose_secret(),
        &browser::challenge(&verifier),
        api::SCOPE,
    );
    browser::open(&url, idc.response_timeout);
    let code = callback
        .wait(&state, idc.response_timeout)
        .map_err(|why| no_code(idc, why, &url))?;
    let tokens = oidc.redeem(&reg, &code, &verifier, &redirect_uri)?;
    // Only a sign-in that worked leaves anything in the cache.
    if new_reg {
        regs.save(&reg)?;
    }
    cache.save(&tokens)?;
    Ok(tokens)
}

fn no_code(idc: &Idc, why: browser::NoCode, url: &str) -> Error {
    use browser::NoCode;
    match why {
        NoCode::TimedOut => idc.failure(
            AwsFailure::Timeout,
            format!(
                "no browser sign-in within {} s (--idc-response-timeout); the sign-in page was {url}",
                idc.response_timeout.as_secs()
            ),
        ),
        NoCode::WrongState => idc.failure(
            AwsFailure::AccessDenied,
            "the browser callback's state does not match this sign-in's; it was refused".into(),
        ),
        NoCode::Refused(e) => idc.failure(
            AwsFailure::AccessDenied,
            format!("the sign-in page answered with an error ({})", report::escape(&e)),
        ),
        NoCode::Io(e) => idc.failure(AwsFailure::NotSent, format!("the callback listener failed: {e}")),
    }
}

/// `get` for a sign-in: the access token on stdout, as the token contract
/// or alone; never as shell variables (a token is not a password).
pub(crate) fn get(
    idc: &Idc,
    format: OutputFormat,
    out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    if format == OutputFormat::Env {
        return Err(refused("--output env"));
    }
    let t = access_token(idc)?;
    let token = IdcToken {
        token: t.access_token,
        token_type: TokenType::AccessToken,
        expiration: t.expiration,
    };
    output::write_token(out, format, &token).map_err(Error::Output)
}

/// What would hand the token over as a password is refused before any sign-in.
pub(crate) fn refused(what: &str) -> Error {
    Error::Usage(format!(
        "{what} cannot be used with --idc-issuer-url: a token is not a password; use `redshift-creds get`"
    ))
}
