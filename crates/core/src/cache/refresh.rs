//! The use case: read the cache, lock, read again, fetch only if still needed, store, and hand back.

use super::RefreshLock;
use super::entry::{Freshness, Stored};
use crate::error::Error;
use crate::report;

/// Reads and writes one key's cached entry, and takes its refresh lock.
pub trait EntryCache<T> {
    /// The cached entry, if there is a readable one.
    fn load(&mut self) -> Result<Option<T>, Error>;
    /// Takes the refresh lock, waiting for another holder; `None` when this
    /// cache has nothing to protect.
    fn lock(&mut self) -> Result<Option<RefreshLock>, Error>;
    /// Stores a fresh entry.
    fn save(&mut self, entry: &T) -> Result<(), Error>;
    /// Records beside the entry that expires at `expiration` that refreshing
    /// it failed at `at` for `reason`, for a later run that serves it (the
    /// front, whose background refresh has nobody to tell). Best effort.
    fn note_failure(&mut self, _expiration: i64, _at: i64, _reason: &str) {}
}

/// Where fresh entries come from (the AWS API).
pub trait Fetch<T> {
    /// Asks for a new one.
    fn fetch(&self) -> Result<T, Error>;
}

/// The current time, in seconds since the Unix epoch.
pub trait Clock {
    /// Now.
    fn now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// How the credential was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// From the cache, without asking AWS.
    Hit,
    /// Fetched from AWS and stored.
    Fetched,
    /// The refresh failed; the cached credential is still valid and was used.
    Stale,
}

/// The cached entry, if it stays valid for longer than `margin` seconds: the
/// hit path on its own, with no lock.
pub fn fresh<T: Stored>(
    cache: &mut dyn EntryCache<T>,
    clock: &dyn Clock,
    margin: i64,
) -> Result<Option<T>, Error> {
    let found = cache.load()?;
    Ok(found.filter(|c| outlives_margin(c, clock, margin)))
}

/// The cached entry if it has not expired, with its [`Freshness`] at the
/// clock's now: [`Freshness::Fresh`], or [`Freshness::Ahead`] (inside the
/// refresh margin: still valid, due for a refresh). Read once, with no lock.
pub fn usable<T: Stored>(
    cache: &mut dyn EntryCache<T>,
    clock: &dyn Clock,
    margin: i64,
) -> Result<Option<(T, Freshness)>, Error> {
    let now = clock.now();
    Ok(cache
        .load()?
        .map(|c| {
            let f = Freshness::of(&c, now, margin);
            (c, f)
        })
        .filter(|(_, f)| *f != Freshness::Unusable))
}

/// Whether `entry` stays valid for longer than `margin` seconds from now.
fn outlives_margin<T: Stored>(entry: &T, clock: &dyn Clock, margin: i64) -> bool {
    Freshness::of(entry, clock.now(), margin) == Freshness::Fresh
}

/// Returns a credential valid for longer than `margin` seconds if one can be
/// had: from the cache when it is fresh (no lock), else under the refresh
/// lock, re-reading the cache first so concurrent callers make one API call.
/// When the refresh fails but the cached password has not expired, that
/// password is returned with a warning.
pub fn obtain<T: Stored>(
    cache: &mut dyn EntryCache<T>,
    fetch: &dyn Fetch<T>,
    clock: &dyn Clock,
    margin: i64,
) -> Result<(T, Outcome), Error> {
    let first = cache.load()?;
    if let Some(c) = first
        .as_ref()
        .filter(|c| outlives_margin(*c, clock, margin))
    {
        tracing::debug!(expiration = c.expiration(), "cache hit");
        return Ok((c.clone(), Outcome::Hit));
    }

    let _lock = match cache.lock() {
        Ok(lock) => lock,
        Err(e @ Error::LockTimeout { .. }) => return stale_or(cache, first, clock, e),
        Err(e) => return Err(e),
    };
    let current = cache.load()?;
    if let Some(c) = current
        .as_ref()
        .filter(|c| outlives_margin(*c, clock, margin))
    {
        tracing::debug!(
            expiration = c.expiration(),
            "another process refreshed the entry"
        );
        return Ok((c.clone(), Outcome::Hit));
    }

    match fetch.fetch() {
        Ok(fresh) => {
            cache.save(&fresh)?;
            Ok((fresh, Outcome::Fetched))
        }
        Err(e) => stale_or(cache, current.or(first), clock, e),
    }
}

/// Falls back to a cached credential that has not expired, recording the
/// failure beside it, or fails with `err`.
fn stale_or<T: Stored>(
    cache: &mut dyn EntryCache<T>,
    cached: Option<T>,
    clock: &dyn Clock,
    err: Error,
) -> Result<(T, Outcome), Error> {
    let now = clock.now();
    match cached.filter(|c| Freshness::of(c, now, 0) == Freshness::Fresh) {
        Some(c) => {
            cache.note_failure(c.expiration(), now, &err.to_string());
            report::warn(&format!(
                "{err}; using the cached {}, which expires in {} s",
                T::NOUN,
                c.expiration() - now
            ));
            Ok((c, Outcome::Stale))
        }
        None => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::Credential;
    use crate::testing::FakeClock;
    use secrecy::SecretString;
    use std::cell::{Cell, RefCell};

    #[derive(Default)]
    struct MemoryCache {
        entry: Option<Credential>,
        locks: usize,
        saves: usize,
        failures: Vec<(i64, i64, String)>,
    }
    impl EntryCache<Credential> for MemoryCache {
        fn load(&mut self) -> Result<Option<Credential>, Error> {
            Ok(self.entry.clone())
        }
        fn lock(&mut self) -> Result<Option<RefreshLock>, Error> {
            self.locks += 1;
            Ok(None)
        }
        fn save(&mut self, c: &Credential) -> Result<(), Error> {
            self.saves += 1;
            self.entry = Some(c.clone());
            Ok(())
        }
        fn note_failure(&mut self, expiration: i64, at: i64, reason: &str) {
            self.failures.push((expiration, at, reason.to_string()));
        }
    }

    /// Issues 900-second passwords numbered by call, or fails when told to.
    struct FakeApi<'a> {
        clock: &'a FakeClock,
        calls: Cell<usize>,
        fail: Cell<bool>,
        forbidden: Cell<bool>,
    }
    impl Fetch<Credential> for FakeApi<'_> {
        fn fetch(&self) -> Result<Credential, Error> {
            assert!(
                !self.forbidden.get(),
                "the API must not be called while the entry is valid"
            );
            self.calls.set(self.calls.get() + 1);
            if self.fail.get() {
                return Err(Error::Aws {
                    api: "GetClusterCredentials",
                    target: "cluster \"c\", user \"u\"".into(),
                    kind: crate::error::AwsFailure::Throttled,
                    reason: "AWS is throttling requests (Rate exceeded)".into(),
                    hint: None,
                });
            }
            Ok(Credential {
                db_user: "IAM:u".into(),
                password: SecretString::from(format!("pw{}", self.calls.get())),
                expiration: self.clock.now() + 900,
            })
        }
    }

    fn api(clock: &FakeClock) -> FakeApi<'_> {
        FakeApi {
            clock,
            calls: Cell::new(0),
            fail: Cell::new(false),
            forbidden: Cell::new(false),
        }
    }

    #[test]
    fn lifecycle_empty_valid_near_expiry_refreshed() {
        let clock = FakeClock(Cell::new(1_000_000));
        let api = api(&clock);
        let mut cache = MemoryCache::default();

        let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
        assert_eq!((o, c.expose_password()), (Outcome::Fetched, "pw1"));
        assert_eq!(cache.saves, 1);

        api.forbidden.set(true);
        let locks_before = cache.locks;
        for step in [0, 1, 300, 599] {
            clock.0.set(1_000_000 + step);
            let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
            assert_eq!(
                (o, c.expose_password()),
                (Outcome::Hit, "pw1"),
                "at +{step}"
            );
        }
        assert_eq!(cache.locks, locks_before, "a hit takes no lock");

        api.forbidden.set(false);
        clock.0.set(1_000_000 + 600);
        let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
        assert_eq!((o, c.expose_password()), (Outcome::Fetched, "pw2"));
        assert_eq!(c.expiration, 1_000_600 + 900);
        assert_eq!(cache.locks, locks_before + 1);
    }

    #[test]
    fn stale_on_error_while_the_password_is_still_valid() {
        let clock = FakeClock(Cell::new(1_000_000));
        let api = api(&clock);
        let mut cache = MemoryCache::default();
        obtain(&mut cache, &api, &clock, 300).unwrap();

        api.fail.set(true);
        clock.0.set(1_000_000 + 800);
        let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
        assert_eq!((o, c.expose_password()), (Outcome::Stale, "pw1"));
        assert_eq!(cache.failures.len(), 1, "the failure is recorded");
        let (expiration, at, reason) = &cache.failures[0];
        assert_eq!((*expiration, *at), (1_000_900, 1_000_800));
        assert!(reason.contains("Rate exceeded"), "{reason}");

        clock.0.set(1_000_000 + 900);
        let err = obtain(&mut cache, &api, &clock, 300).unwrap_err();
        assert!(err.to_string().contains("Rate exceeded"), "{err}");
    }

    #[test]
    fn a_refresh_by_another_process_is_seen_after_the_lock() {
        struct RacingCache {
            loads: RefCell<usize>,
            fresh: Credential,
        }
        impl EntryCache<Credential> for RacingCache {
            fn load(&mut self) -> Result<Option<Credential>, Error> {
                *self.loads.borrow_mut() += 1;
                // The first read misses; by the second, another process stored one.
                Ok((*self.loads.borrow() > 1).then(|| self.fresh.clone()))
            }
            fn lock(&mut self) -> Result<Option<RefreshLock>, Error> {
                Ok(None)
            }
            fn save(&mut self, _: &Credential) -> Result<(), Error> {
                panic!("nothing to save");
            }
        }
        let clock = FakeClock(Cell::new(1_000_000));
        let api = api(&clock);
        api.forbidden.set(true);
        let mut cache = RacingCache {
            loads: RefCell::new(0),
            fresh: Credential {
                db_user: "IAM:u".into(),
                password: SecretString::from("theirs"),
                expiration: 1_000_900,
            },
        };
        let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
        assert_eq!((o, c.expose_password()), (Outcome::Hit, "theirs"));
    }

    #[test]
    fn usable_tells_fresh_from_inside_the_margin_from_expired() {
        let clock = FakeClock(Cell::new(1_000_000));
        let api = api(&clock);
        let mut cache = MemoryCache::default();
        obtain(&mut cache, &api, &clock, 300).unwrap();
        let at = |cache: &mut MemoryCache, step: i64| {
            clock.0.set(1_000_000 + step);
            usable(cache, &clock, 300)
                .unwrap()
                .map(|(c, f)| (c.expose_password().to_string(), f))
        };
        assert_eq!(at(&mut cache, 599), Some(("pw1".into(), Freshness::Fresh)));
        assert_eq!(at(&mut cache, 600), Some(("pw1".into(), Freshness::Ahead)));
        assert_eq!(at(&mut cache, 899), Some(("pw1".into(), Freshness::Ahead)));
        assert_eq!(at(&mut cache, 900), None, "expired");
        assert_eq!(cache.locks, 1, "no lock taken");
    }

    #[test]
    fn a_tampered_far_future_entry_is_refetched() {
        let clock = FakeClock(Cell::new(1_000_000));
        let api = api(&clock);
        let mut cache = MemoryCache {
            entry: Some(Credential {
                db_user: "IAM:u".into(),
                password: SecretString::from("forever"),
                expiration: 1_000_000 + 86_400,
            }),
            ..Default::default()
        };
        let (c, o) = obtain(&mut cache, &api, &clock, 300).unwrap();
        assert_eq!((o, c.expose_password()), (Outcome::Fetched, "pw1"));
    }
}
