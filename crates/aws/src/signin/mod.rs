//! The IAM Identity Center browser sign-in (the Redshift drivers' `BrowserIdcAuthPlugin`): one sign-in shared by every process through the cache, a refresh without a browser, and a sign-in lock only sign-ins take.
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

use api::Oidc;
use redshift_creds_core::cache::refresh::{self, EntryCache, SystemClock};
use redshift_creds_core::cache::{Cache, RefreshLock};
use redshift_creds_core::error::{AwsFailure, Error, display_value};
use redshift_creds_core::output::{self, OutputFormat};
use redshift_creds_core::private_fs::SafeDir;
use redshift_creds_core::report;
pub(crate) use redshift_creds_core::signin::entries::{Registration, Tokens};
pub(crate) use redshift_creds_core::signin::{Idc, cached, refused, wanted};
use secrecy::ExposeSecret;
use std::time::Duration;

/// Whether the callback port can be listened on now (for `doctor`).
pub(crate) fn port_is_free(port: u16) -> Result<(), String> {
    browser::Callback::bind(port).map(drop)
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
    let err = match sign_in(idc, &mut cache, &oidc) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    // As with a password: a token that is still valid is served, with why it
    // was not renewed.
    use redshift_creds_core::cache::refresh::Clock;
    let now = SystemClock.now();
    match EntryCache::<Tokens>::load(&mut cache)?.filter(|t| t.expiration - now >= 60) {
        Some(t) => {
            report::warn(&format!(
                "{err}; using the cached Identity Center token, which expires in {} s",
                t.expiration - now
            ));
            Ok(t)
        }
        None => Err(err),
    }
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
        Ok(mut t) => {
            // A refresh that rotates nothing keeps the refresh token it used.
            if t.refresh_token.is_none() {
                t.refresh_token = Some(refresh_token);
            }
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
    let name = format!("{}.signin", idc.key("token"));
    let wait = idc.response_timeout + Duration::from_secs(30);
    let taken = match SafeDir::ensure_private(dir) {
        Ok(dir) => RefreshLock::acquire_named(&dir, &name, wait)?,
        Err(why) => Err(why),
    };
    match taken {
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
    let before = EntryCache::<Tokens>::load(cache)?.map(|t| t.expiration);
    let _lock = sign_in_lock(idc, cache)?;
    if let Some(t) = signed_in_meanwhile(idc, cache, before)? {
        tracing::debug!("another process signed in");
        return Ok(t);
    }
    // The port first: a taken port fails before any call.
    let callback =
        browser::Callback::bind(idc.port).map_err(|why| failure(idc, AwsFailure::NotSent, why))?;
    let redirect_uri = callback.redirect_uri();
    let mut regs = idc.registration_cache()?;
    let outlives = idc.response_timeout.as_secs() as i64 + 60;
    let (reg, new_reg) = match refresh::fresh::<Registration>(&mut regs, &SystemClock, outlives)? {
        Some(r) => (r, false),
        None => (oidc.register(&idc.display_name, &redirect_uri)?, true),
    };
    let state = browser::random_text(32).map_err(|why| failure(idc, AwsFailure::NotSent, why))?;
    let verifier =
        browser::random_text(32).map_err(|why| failure(idc, AwsFailure::NotSent, why))?;
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

/// The token another process got while this one waited for the sign-in
/// lock: one that outlives the margin, or any new one with a minute left
/// (a token that lives less than the margin must not open a second browser).
fn signed_in_meanwhile(
    idc: &Idc,
    cache: &mut Cache,
    before: Option<i64>,
) -> Result<Option<Tokens>, Error> {
    use redshift_creds_core::cache::refresh::Clock;
    let now = SystemClock.now();
    let found: Option<Tokens> = cache.load()?;
    Ok(found.filter(|t| {
        let left = t.expiration - now;
        left > idc.refresh_margin || (left >= 60 && Some(t.expiration) != before)
    }))
}

fn no_code(idc: &Idc, why: browser::NoCode, url: &str) -> Error {
    use browser::NoCode;
    match why {
        NoCode::TimedOut => failure(
            idc,
            AwsFailure::Timeout,
            format!(
                "no browser sign-in within {} s (--idc-response-timeout); the sign-in page was {url}",
                idc.response_timeout.as_secs()
            ),
        ),
        NoCode::WrongState => failure(
            idc,
            AwsFailure::AccessDenied,
            "the browser callback's state does not match this sign-in's; it was refused".into(),
        ),
        NoCode::Refused(e) => failure(
            idc,
            AwsFailure::AccessDenied,
            format!(
                "the sign-in page answered with an error ({})",
                report::escape(&e)
            ),
        ),
        NoCode::Io(e) => failure(
            idc,
            AwsFailure::NotSent,
            format!("the callback listener failed: {e}"),
        ),
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
    let token = access_token(idc)?.into_access_token();
    output::write_token(out, format, &token).map_err(Error::Output)
}

/// A failed sign-in, naming the issuer.
fn failure(idc: &Idc, kind: AwsFailure, reason: String) -> Error {
    Error::Aws {
        api: "the Identity Center sign-in",
        target: format!("issuer {}", display_value(&idc.issuer_url)),
        kind,
        reason,
        hint: None,
    }
}
