//! Where fresh entries come from: the [`Source`] trait that the commands are written against.

use crate::cache::entry::Freshness;
use crate::cache::key::CacheKey;
use crate::cache::{Cache, refresh};
use crate::config::Resolved;
use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::token::{IdcToken, TokenType};

/// Where a command gets its credential and endpoint. Two implementations,
/// each complete on its own:
///
/// * `redshift-creds` (the front, in the root package): a lock-free cache
///   hit, and otherwise a hand-over to `redshift-creds-aws`;
/// * `redshift-creds-aws` (crate `redshift-creds-aws`): a hit, and otherwise
///   a refresh from AWS under the refresh lock ([`refresh::obtain`]).
pub trait Source {
    /// A credential for the request that outlives the refresh margin.
    fn credential(&self, r: &Resolved) -> Result<Credential, Error>;
    /// The cluster's or workgroup's endpoint, when the flags did not give one.
    fn endpoint(&self, r: &Resolved) -> Result<Endpoint, Error>;
    /// The request's Identity Center token (`r.request.token` is `Some`),
    /// outliving the refresh margin.
    fn token(&self, r: &Resolved) -> Result<IdcToken, Error>;
}

/// The cache of the request's Identity Center token of `token_type`, under
/// its own key (never a password's), labelled for `list`.
pub fn token_cache(r: &Resolved, token_type: TokenType) -> Result<Cache, Error> {
    let s = &r.settings;
    let mut cache = Cache::open(
        s.cache,
        CacheKey::token_of(&r.request, token_type),
        s.cache_dir.clone(),
        s.lock_timeout,
    )?;
    cache.set_label(&r.request);
    Ok(cache)
}

/// The cached token of the request's type if it outlives the refresh
/// margin: read once, with no lock (the front's hit). `None` is a miss.
pub fn cached_token(r: &Resolved) -> Result<Option<IdcToken>, Error> {
    let Some(token_type) = r.request.token else {
        return Ok(None);
    };
    let mut cache = token_cache(r, token_type)?;
    let found: Option<IdcToken> =
        refresh::fresh(&mut cache, &refresh::SystemClock, r.settings.refresh_margin)?;
    // An entry of another type under this key is not ours to hand out.
    Ok(found.filter(|t| t.token_type == token_type))
}

/// The cache of the request's credential, labelled for `list`.
pub fn credential_cache(r: &Resolved) -> Result<Cache, Error> {
    let s = &r.settings;
    let mut cache = Cache::open(
        s.cache,
        CacheKey::of(&r.request),
        s.cache_dir.clone(),
        s.lock_timeout,
    )?;
    cache.set_label(&r.request);
    Ok(cache)
}

/// The cache of the request's endpoint (a day's lookup), labelled for `list`.
pub fn endpoint_cache(r: &Resolved) -> Result<Cache, Error> {
    let s = &r.settings;
    let mut cache = Cache::open(
        s.cache,
        CacheKey::endpoint_of(&r.request),
        s.cache_dir.clone(),
        s.lock_timeout,
    )?;
    cache.set_label(&r.request);
    Ok(cache)
}

/// Set (to `1`) by the front on the background refresh it starts: tells
/// `redshift-creds-aws` to refresh the request's credential under the
/// refresh lock and print nothing. Internal; not for users.
pub const REFRESH_AHEAD_ENV: &str = "REDSHIFT_CREDS_REFRESH_AHEAD";

/// A lock-free credential hit for the front, with what to do next.
#[derive(Debug)]
pub struct Hit {
    /// The cached credential: it has not expired.
    pub credential: Credential,
    /// Inside the refresh margin with refresh-ahead on: the key's marker,
    /// taken by this process, for the background refresh to hold while it
    /// runs. `None` when the entry outlives the margin or a background
    /// refresh is running already.
    pub ahead: Option<std::fs::File>,
}

/// The cached credential for the front: a hit when it outlives the refresh
/// margin, and also, with refresh-ahead on, when it is inside the margin but
/// still valid (then the caller starts one background refresh if it got the
/// marker). `None` (a miss, to hand over) otherwise, or when the marker
/// cannot be made.
pub fn cached_credential_ahead(r: &Resolved) -> Result<Option<Hit>, Error> {
    let mut cache = credential_cache(r)?;
    let margin = r.settings.refresh_margin;
    let Some((credential, freshness)) = refresh::usable(&mut cache, &refresh::SystemClock, margin)?
    else {
        return Ok(None);
    };
    if freshness == Freshness::Fresh {
        return Ok(Some(Hit {
            credential,
            ahead: None,
        }));
    }
    if !r.settings.refresh_ahead {
        return Ok(None);
    }
    tell_failed_refresh(&mut cache, &credential);
    match cache.ahead_marker() {
        Ok(ahead) => Ok(Some(Hit { credential, ahead })),
        Err(why) => {
            tracing::debug!(%why, "no refresh ahead");
            Ok(None)
        }
    }
}

/// Says on stderr (held like any warning) that the last background refresh
/// of `credential` failed, when, why, and how long it stays valid: the
/// refresh had nobody to tell. One small read, made only inside the margin.
fn tell_failed_refresh(cache: &mut Cache, credential: &Credential) {
    use crate::cache::entry::Stored;
    if let Some(failed) = cache.refresh_failure(credential.expiration()) {
        let now = refresh::Clock::now(&refresh::SystemClock);
        crate::report::warn(&failed.describe(Credential::NOUN, now));
    }
}

/// The cached endpoint if it has not expired, read the same way.
pub fn cached_endpoint(r: &Resolved) -> Result<Option<Endpoint>, Error> {
    let mut cache = endpoint_cache(r)?;
    let found: Option<crate::cache::entry::CachedEndpoint> =
        refresh::fresh(&mut cache, &refresh::SystemClock, 0)?;
    Ok(found.map(|c| c.endpoint))
}
