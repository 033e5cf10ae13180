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

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, to the second.
pub fn rfc3339(unix_seconds: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds.max(0) as u64);
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
}
