//! How the run behaves: the password lifetime and refresh margin, the timeouts, and the cache store and its directory.

use super::layers::{Layer, Origin, Sourced};
use super::{Origins, defaults};
use crate::cache::mode::CacheMode;
use crate::choice::Parsed;
use crate::env::Env;
use crate::error::Error;
use crate::rules;
use std::path::PathBuf;
use std::time::Duration;

/// The lifetime and the timeouts, checked.
pub(super) struct Timing {
    pub duration_seconds: i64,
    pub refresh_margin: i64,
    pub refresh_ahead: bool,
    pub lock_timeout: Duration,
    pub api_timeout: Duration,
}

/// Resolves the password lifetime (the margin is checked against the
/// duration in force) and the timeouts.
pub(super) fn timing(m: &mut Layer, origins: &mut Origins) -> Result<Timing, Error> {
    let duration = m.duration_seconds.take();
    if let Some(d) = &duration {
        rules::duration(&d.input(), d.value)?;
    }
    let duration_seconds =
        origins.or_default("duration_seconds", duration, defaults::DURATION_SECONDS);
    let margin = m.refresh_margin.take();
    if let Some(r) = &margin {
        rules::refresh_margin(&r.input(), r.value, duration_seconds)?;
    }
    let refresh_margin = origins.or_default(
        "refresh_margin",
        margin,
        defaults::REFRESH_MARGIN.min(duration_seconds - 1),
    );
    let refresh_ahead = origins.or_default("refresh_ahead", m.refresh_ahead.take(), true);
    let lock_timeout = m.lock_timeout.take();
    let lock_timeout = origins.or_default("lock_timeout", lock_timeout, defaults::LOCK_TIMEOUT);
    rules::timeout("--lock-timeout", lock_timeout)?;
    let api_timeout = m.api_timeout.take();
    let api_timeout = origins.or_default("api_timeout", api_timeout, defaults::API_TIMEOUT);
    rules::timeout("--api-timeout", api_timeout)?;
    if api_timeout == 0 {
        return Err(Error::invalid(
            "--api-timeout",
            "0",
            "must be from 1 to 3600 seconds",
        ));
    }
    Ok(Timing {
        duration_seconds,
        refresh_margin,
        refresh_ahead,
        lock_timeout: Duration::from_secs(lock_timeout as u64),
        api_timeout: Duration::from_secs(api_timeout as u64),
    })
}

/// The cache store in force; a bad value is refused only if it is the one in force.
pub(super) fn cache_mode(m: &mut Layer, origins: &mut Origins) -> Result<CacheMode, Error> {
    let cache = match m.cache.take() {
        None => None,
        Some(Sourced {
            value: Parsed::Valid(mode),
            origin,
        }) => Some(Sourced {
            value: mode,
            origin,
        }),
        Some(Sourced {
            value: Parsed::Invalid { text, rule },
            origin,
        }) => return Err(Error::invalid(&origin.to_string(), &text, rule)),
    };
    let mode = cache.as_ref().map_or(CacheMode::Auto, |c| c.value);
    let origin = cache.map_or(Origin::Default, |c| c.origin);
    origins.push("cache", format!("{mode:?}").to_ascii_lowercase(), origin);
    Ok(mode)
}

/// The file store's and the locks' directory: `REDSHIFT_CREDS_CACHE_DIR`,
/// else the user's cache directory (None when there is none). An empty value
/// is an error, not "unset": it would otherwise mean the current directory;
/// so is a relative path.
/// The value is a path, so it need not be UTF-8.
pub fn cache_dir(env: &dyn Env) -> Result<Option<PathBuf>, Error> {
    cache_dir_with_origin(env).map(|found| found.map(|(dir, _)| dir))
}

/// [`cache_dir`], with where it came from.
pub(super) fn cache_dir_with_origin(env: &dyn Env) -> Result<Option<(PathBuf, Origin)>, Error> {
    const NAME: &str = "REDSHIFT_CREDS_CACHE_DIR";
    match env.var_os(NAME) {
        Some(d) if d.is_empty() => Err(Error::invalid(NAME, "", "must be a directory path")),
        // As with XDG's variables, a relative path is invalid: it would give
        // each working directory a cache of its own.
        Some(d) if std::path::Path::new(&d).is_relative() => Err(Error::invalid(
            NAME,
            &d.to_string_lossy(),
            "must be an absolute path (a relative one would depend on the working directory)",
        )),
        Some(d) => Ok(Some((PathBuf::from(d), Origin::Env(NAME)))),
        None => Ok(dirs::cache_dir().map(|d| (d.join("redshift-creds"), Origin::Default))),
    }
}
