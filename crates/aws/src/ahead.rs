//! When the proxy refreshes a password ahead: the cache's [`Freshness`] of the last one handed out at the injected [`Clock`]'s now, one background refresh at a time, and a pause after each attempt.

use redshift_creds_core::cache::entry::Freshness;
use redshift_creds_core::cache::refresh::Clock;
use redshift_creds_core::credential::Credential;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// After a background refresh starts (and so after one that failed), wait
/// this long, in seconds, before the next one.
pub(crate) const RETRY_AFTER: i64 = 10;

/// One target's refresh-ahead state, shared by its sessions. It needs no
/// read of the store: it decides on the expiry of the last credential this
/// process handed out, as [`Freshness::of`] sees it.
pub(crate) struct RefreshAhead {
    /// The last credential handed out (`None`: none yet).
    last: Mutex<Option<Credential>>,
    /// A background refresh is running.
    running: AtomicBool,
    /// When the last background refresh started (`i64::MIN`: never).
    last_attempt: AtomicI64,
}

impl RefreshAhead {
    pub(crate) fn new() -> Self {
        RefreshAhead {
            last: Mutex::new(None),
            running: AtomicBool::new(false),
            last_attempt: AtomicI64::new(i64::MIN),
        }
    }

    /// Remembers the credential just handed out (a login, or a refresh that worked).
    pub(crate) fn handed_out(&self, c: &Credential) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
    }

    /// Whether the caller is to start a background refresh now, with a
    /// refresh `margin` in seconds: only when the last credential is
    /// [`Freshness::Ahead`] (a fresh one needs none; an unusable one is
    /// fetched in the foreground by the login), none is running, and the last
    /// attempt is at least [`RETRY_AFTER`] old. `true` marks one as running:
    /// the caller then calls [`RefreshAhead::finished`].
    pub(crate) fn start(&self, clock: &dyn Clock, margin: i64) -> bool {
        let now = clock.now();
        let freshness = match &*self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(c) => Freshness::of(c, now, margin),
            None => return false,
        };
        if freshness != Freshness::Ahead
            || now.saturating_sub(self.last_attempt.load(Ordering::SeqCst)) < RETRY_AFTER
            || self.running.swap(true, Ordering::SeqCst)
        {
            return false;
        }
        self.last_attempt.store(now, Ordering::SeqCst);
        true
    }

    /// The background refresh is over, with the credential it got (`None`: it failed).
    pub(crate) fn finished(&self, refreshed: Option<&Credential>) {
        if let Some(c) = refreshed {
            self.handed_out(c);
        }
        self.running.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redshift_creds_core::testing::FakeClock;
    use secrecy::SecretString;
    use std::cell::Cell;

    const T0: i64 = 1_000_000;
    const MARGIN: i64 = 300;

    fn cred(expiration: i64) -> Credential {
        Credential {
            db_user: "IAM:u".into(),
            password: SecretString::from("pw"),
            expiration,
        }
    }

    /// A state that handed out a 900-second password at `T0`.
    fn handed_out_at_t0() -> (RefreshAhead, FakeClock) {
        let ahead = RefreshAhead::new();
        ahead.handed_out(&cred(T0 + 900));
        (ahead, FakeClock(Cell::new(T0)))
    }

    #[test]
    fn nothing_is_refreshed_before_a_login_or_while_fresh() {
        let ahead = RefreshAhead::new();
        let clock = FakeClock(Cell::new(T0));
        assert!(!ahead.start(&clock, MARGIN), "nothing handed out yet");
        let (ahead, clock) = handed_out_at_t0();
        for step in [0, 1, 599] {
            clock.0.set(T0 + step);
            assert!(!ahead.start(&clock, MARGIN), "fresh at +{step}");
        }
    }

    #[test]
    fn inside_the_margin_one_background_refresh_starts_and_its_result_ends_the_window() {
        let (ahead, clock) = handed_out_at_t0();
        clock.0.set(T0 + 600);
        assert!(ahead.start(&clock, MARGIN), "inside the margin");
        for step in [600, 601, 700] {
            clock.0.set(T0 + step);
            assert!(!ahead.start(&clock, MARGIN), "one at a time (+{step})");
        }
        ahead.finished(Some(&cred(T0 + 700 + 900)));
        for step in [700, 800, 1299] {
            clock.0.set(T0 + step);
            assert!(
                !ahead.start(&clock, MARGIN),
                "the new one is fresh (+{step})"
            );
        }
        clock.0.set(T0 + 1300);
        assert!(ahead.start(&clock, MARGIN), "the next window");
    }

    #[test]
    fn a_failed_refresh_backs_off_then_tries_again() {
        let (ahead, clock) = handed_out_at_t0();
        clock.0.set(T0 + 600);
        assert!(ahead.start(&clock, MARGIN));
        ahead.finished(None);
        for step in [600, 605, 609] {
            clock.0.set(T0 + step);
            assert!(!ahead.start(&clock, MARGIN), "backing off at +{step}");
        }
        clock.0.set(T0 + 600 + RETRY_AFTER);
        assert!(ahead.start(&clock, MARGIN), "retried after the pause");
    }

    #[test]
    fn an_expired_or_implausible_password_is_left_to_the_foreground_login() {
        let (ahead, clock) = handed_out_at_t0();
        clock.0.set(T0 + 900);
        assert!(!ahead.start(&clock, MARGIN), "expired");
        clock.0.set(T0 + 5000);
        assert!(!ahead.start(&clock, MARGIN), "long expired");
        ahead.handed_out(&cred(T0 + 86_400));
        clock.0.set(T0);
        assert!(
            !ahead.start(&clock, MARGIN),
            "further ahead than AWS issues"
        );
    }
}
