//! The Identity Center token a driver logs in with (`token=`, `token_type=`): its kind, the checks on a token from outside, and a `Debug` that hides it.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The AWS operation that issues a `SUBJECT_TOKEN`, as Redshift and
/// Redshift Serverless both spell it.
pub const IDC_API: &str = "GetIdentityCenterAuthToken";

/// What kind of token it is, as the drivers' `token_type` setting names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// Redshift's own encrypted token, from `GetIdentityCenterAuthToken`.
    SubjectToken,
    /// An IAM Identity Center OIDC access token (SSO-OIDC `CreateToken`).
    AccessToken,
}

impl TokenType {
    /// The name the drivers and the `get` output use.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::SubjectToken => "SUBJECT_TOKEN",
            TokenType::AccessToken => "ACCESS_TOKEN",
        }
    }

    /// Reads a name written by [`TokenType::as_str`].
    pub fn parse(name: &str) -> Option<TokenType> {
        match name {
            "SUBJECT_TOKEN" => Some(TokenType::SubjectToken),
            "ACCESS_TOKEN" => Some(TokenType::AccessToken),
            _ => None,
        }
    }

    /// The longest this kind of token may live from when it is issued, in
    /// seconds, with a minute of clock slack. AWS's models state no lifetime:
    /// a `SUBJECT_TOKEN` lives up to an hour (what the drivers refresh on);
    /// an SSO-OIDC access token lives as long as its session allows, up to
    /// 12 hours here.
    pub fn max_lifetime(self) -> i64 {
        match self {
            TokenType::SubjectToken => 3600 + 60,
            TokenType::AccessToken => 12 * 3600 + 60,
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Identity Center token with its kind and expiry. The token is a
/// [`SecretString`]: zeroized on drop, and never shown by `Debug`.
#[derive(Clone)]
pub struct IdcToken {
    /// The token itself.
    pub token: SecretString,
    /// Its kind.
    pub token_type: TokenType,
    /// When it stops working, in seconds since the Unix epoch.
    pub expiration: i64,
}

impl IdcToken {
    /// The token, for the few places that must write it out.
    pub fn expose_token(&self) -> &str {
        self.token.expose_secret()
    }

    /// The expiry as RFC 3339 in UTC.
    pub fn expiration_rfc3339(&self) -> String {
        crate::credential::rfc3339(self.expiration)
    }
}

impl fmt::Debug for IdcToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdcToken")
            .field("token", &format_args!("***"))
            .field("token_type", &self.token_type)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// The longest token accepted from outside, in bytes. The models give no
/// bound; KMS-encrypted tokens and OIDC access tokens are a few KiB at most.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// How soon, at the earliest, an issued token may expire, in seconds.
pub const MIN_EXPIRY_AHEAD: i64 = 60;

/// Checks a token that came from outside (an API answer or a cache entry):
/// 1 to [`MAX_TOKEN_LEN`] bytes of printable ASCII without whitespace, so it
/// fits a connection string, a JSON string and a line as it is.
pub fn check_token(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_TOKEN_LEN {
        return Err("a token is 1 to 8192 bytes");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token is printable ASCII without whitespace");
    }
    Ok(())
}

/// Checks the expiry of a token just issued, against `now`: at least 60 s
/// ahead, and no further than its kind lives.
pub fn check_expiration(
    token_type: TokenType,
    expiration: i64,
    now: i64,
) -> Result<(), &'static str> {
    let ahead = expiration.saturating_sub(now);
    if (MIN_EXPIRY_AHEAD..=token_type.max_lifetime()).contains(&ahead) {
        Ok(())
    } else {
        match token_type {
            TokenType::SubjectToken => Err("an ExpirationTime is between 60 s and 3660 s from now"),
            TokenType::AccessToken => Err("a token's expiry is between 60 s and 12 h from now"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> IdcToken {
        IdcToken {
            token: SecretString::from(value),
            token_type: TokenType::SubjectToken,
            expiration: 1_481_231_573,
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = token("eyJhbGciOi-very-secret");
        let shown = format!("{t:?} {t:#?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(
            shown.contains("***") && shown.contains("SubjectToken"),
            "{shown}"
        );
        assert_eq!(t.expiration_rfc3339(), "2016-12-08T21:12:53Z");
    }

    #[test]
    fn type_names_are_the_drivers() {
        for t in [TokenType::SubjectToken, TokenType::AccessToken] {
            assert_eq!(TokenType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TokenType::SubjectToken.as_str(), "SUBJECT_TOKEN");
        assert_eq!(TokenType::AccessToken.as_str(), "ACCESS_TOKEN");
        assert_eq!(TokenType::parse("subject_token"), None);
    }

    #[test]
    fn tokens_from_outside_are_checked() {
        assert!(check_token("AbC/+=._-~").is_ok());
        assert!(check_token(&"t".repeat(MAX_TOKEN_LEN)).is_ok());
        assert!(check_token(&"t".repeat(MAX_TOKEN_LEN + 1)).is_err());
        for bad in ["", "a b", "a\nb", "a\u{1b}[31m", "tä", "a\0"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
        let now = 1_000_000;
        let s = TokenType::SubjectToken;
        assert!(check_expiration(s, now + 60, now).is_ok());
        assert!(check_expiration(s, now + 3660, now).is_ok());
        for bad in [now + 59, now + 3661, now, 0, -1, i64::MAX, i64::MIN] {
            assert!(check_expiration(s, bad, now).is_err(), "{bad}");
        }
        let a = TokenType::AccessToken;
        assert!(check_expiration(a, now + 8 * 3600, now).is_ok());
        assert!(check_expiration(a, now + 12 * 3600 + 61, now).is_err());
    }
}
