//! The temporary database credential: user, password and expiry, with a `Debug` that hides the password.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A temporary database credential as GetClusterCredentials returns it.
///
/// The password is a [`SecretString`]: zeroized on drop, and never shown by
/// `Debug`.
#[derive(Clone)]
pub struct Credential {
    /// The database user with its `IAM:` or `IAMA:` prefix.
    pub db_user: String,
    /// The temporary password.
    pub password: SecretString,
    /// When the password stops working, in seconds since the Unix epoch.
    pub expiration: i64,
}

impl Credential {
    /// The password, for the few places that must write it out.
    pub fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }

    /// The expiry as RFC 3339 in UTC, such as `2016-12-08T21:12:53Z`.
    pub fn expiration_rfc3339(&self) -> String {
        rfc3339(self.expiration)
    }
}

/// The longest database user AWS may hand us, in bytes.
pub const MAX_DB_USER_LEN: usize = 128;
/// The longest password AWS may hand us, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// How soon, at the earliest, an issued password may expire, in seconds.
pub const MIN_EXPIRY_AHEAD: i64 = 60;
/// How late, at the latest, an issued password may expire, in seconds: the
/// longest lifetime the API issues plus clock slack.
pub const MAX_EXPIRY_AHEAD: i64 = 3600 + 60;

/// Checks a database user that came from outside (an API answer or a cache
/// entry): 1 to 128 bytes, no control characters.
pub fn check_db_user(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_DB_USER_LEN {
        return Err("a DbUser is 1 to 128 bytes");
    }
    if value.chars().any(|c| c.is_control()) {
        return Err("a DbUser has no control characters");
    }
    Ok(())
}

/// Checks a password that came from outside: 1 to 1024 bytes of printable
/// ASCII without whitespace, so it fits a pgpass line, an environment
/// variable and a connection string as it is.
pub fn check_password(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_PASSWORD_LEN {
        return Err("a DbPassword is 1 to 1024 bytes");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a DbPassword is printable ASCII without whitespace");
    }
    Ok(())
}

/// Checks an expiry the API just issued, against `now`: at least 60 s and
/// at most 3660 s ahead.
pub fn check_expiration(expiration: i64, now: i64) -> Result<(), &'static str> {
    let ahead = expiration.saturating_sub(now);
    if (MIN_EXPIRY_AHEAD..=MAX_EXPIRY_AHEAD).contains(&ahead) {
        Ok(())
    } else {
        Err("an Expiration is between 60 s and 3660 s from now")
    }
}

/// The latest instant RFC 3339 can write with a four-digit year.
const LAST_RFC3339_SECOND: i64 = 253_402_300_799;

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, to the second.
/// Instants outside years 1970 to 9999 are clamped, never a panic.
pub fn rfc3339(unix_seconds: i64) -> String {
    let clamped = unix_seconds.clamp(0, LAST_RFC3339_SECOND) as u64;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(clamped);
    humantime::format_rfc3339_seconds(t).to_string()
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("db_user", &self.db_user)
            .field("password", &format_args!("***"))
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credential {
            db_user: "IAM:alice".into(),
            password: SecretString::from("hunter2-very-secret"),
            expiration: 1_481_231_573,
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        assert!(shown.contains("IAM:alice"), "{shown}");
    }

    #[test]
    fn expiration_is_rfc3339_utc() {
        let c = Credential {
            db_user: "IAM:temp_creds_user".into(),
            password: SecretString::from("x"),
            expiration: 1_481_231_573,
        };
        assert_eq!(c.expiration_rfc3339(), "2016-12-08T21:12:53Z");
    }

    #[test]
    fn any_instant_formats_without_a_panic() {
        assert_eq!(rfc3339(1_000_000_000_000), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn answers_from_outside_are_checked() {
        assert!(check_db_user("IAMR:tester@role").is_ok());
        assert!(check_db_user("IAM:bjørn").is_ok());
        assert!(check_db_user("").is_err());
        assert!(check_db_user(&"a".repeat(129)).is_err());
        assert!(check_db_user(&"a".repeat(128)).is_ok());
        for bad in ["IAM:a\nb", "IAM:\u{1b}[31m", "a\u{7}", "a\0b", "a\u{9b}b"] {
            assert!(check_db_user(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("AbC/+=~!x").is_ok());
        assert!(check_password(&"p".repeat(1024)).is_ok());
        for bad in ["", "a b", "a\tb", "a\nb", "pä", "a\0"] {
            assert!(check_password(bad).is_err(), "{bad:?}");
        }
        assert!(check_password(&"p".repeat(1025)).is_err());
        let now = 1_000_000;
        assert!(check_expiration(now + 60, now).is_ok());
        assert!(check_expiration(now + 3660, now).is_ok());
        for bad in [
            now + 59,
            now + 3661,
            now,
            0,
            -1,
            i64::MAX,
            i64::MIN,
            1_000_000_000_000,
        ] {
            assert!(check_expiration(bad, now).is_err(), "{bad}");
        }
    }
}
