//! Where logins come from: the trait the AWS side implements, and what it returns (a
//! database user's password, or an IAM Identity Center token for Redshift's method 14).

use secrecy::SecretString;

/// A database login: what to log in with, valid until when.
/// `Debug` never shows the password or the token (`SecretString` prints a placeholder).
#[derive(Debug, Clone)]
pub struct Login {
    /// The password or the token.
    pub secret: LoginSecret,
    /// When the password or token stops working, in Unix seconds.
    pub expiration: i64,
}

/// What a [`Login`] presents to the server.
#[derive(Debug, Clone)]
pub enum LoginSecret {
    /// A database user and its temporary password: the startup message names the user and
    /// the server asks for the password (cleartext, MD5, SCRAM or Redshift's digest).
    Password {
        /// The database user the password belongs to (e.g. `IAM:alice`).
        user: String,
        /// The temporary password.
        password: SecretString,
    },
    /// An identity provider token (IAM Identity Center): the startup message names no user
    /// but `idp_type = AwsIdc` and `token_type`, and the server asks for the token with
    /// Redshift's authentication request 14.
    Token {
        /// The token itself.
        token: SecretString,
        /// Its type as Redshift names it, e.g. `ACCESS_TOKEN` or `EXT_JWT`.
        token_type: String,
    },
}

impl Login {
    /// A password login.
    pub fn password(user: impl Into<String>, password: SecretString, expiration: i64) -> Login {
        Login {
            secret: LoginSecret::Password {
                user: user.into(),
                password,
            },
            expiration,
        }
    }

    /// A token login.
    pub fn token(token: SecretString, token_type: impl Into<String>, expiration: i64) -> Login {
        Login {
            secret: LoginSecret::Token {
                token,
                token_type: token_type.into(),
            },
            expiration,
        }
    }

    /// Who this login is, for log lines: the database user, or the token's type (the
    /// server alone knows whom a token maps to).
    pub fn describe(&self) -> String {
        match &self.secret {
            LoginSecret::Password { user, .. } => user.clone(),
            LoginSecret::Token { token_type, .. } => format!("(token, {token_type})"),
        }
    }
}

/// Why a source could not give a login; reaches the client as a FATAL ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// Shown to the client after `redshift-creds: `.
    pub message: String,
    /// The SQLSTATE the client sees, e.g. `08001` (cannot connect) or `28000` (not authorized).
    pub sqlstate: &'static str,
}

/// Where logins come from. Blocking: the proxy calls it on `spawn_blocking`.
pub trait PasswordSource: Send + Sync + 'static {
    /// A login from the shared cache (`fresh = false`), or one forced past the cache
    /// (`fresh = true`: after the upstream rejected the cached one, and for every
    /// connection once a target's tokens have proved single-use).
    fn login(&self, fresh: bool) -> Result<Login, SourceError>;

    /// Called on every new session; when the cached login is inside its refresh margin, the
    /// source refreshes it in the background. Must return quickly. The default does nothing.
    fn refresh_ahead(&self) {}

    /// How long a session may take to log in upstream, the source's [`login`](Self::login)
    /// included. The default, 30 s, suits an API call; a source that may wait for a person
    /// (a browser sign-in) says how long that may take.
    fn login_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(30)
    }

    /// How many fresh credentials this source has fetched so far (AWS calls or sign-ins),
    /// for `/metrics`. The default counts nothing.
    fn fetches(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_and_the_token() {
        let p = Login::password("IAM:alice", SecretString::from("pw-s3cret"), 1);
        let t = Login::token(SecretString::from("tok-s3cret"), "ACCESS_TOKEN", 1);
        let shown = format!("{p:?} {t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("IAM:alice") && shown.contains("ACCESS_TOKEN"),
            "{shown}"
        );
        assert_eq!(p.describe(), "IAM:alice");
        assert_eq!(t.describe(), "(token, ACCESS_TOKEN)");
    }
}
