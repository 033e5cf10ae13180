//! Where passwords come from: the trait the AWS side implements, and what it returns.

use secrecy::SecretString;

/// A database login: who to log in as, with which password, valid until when.
/// `Debug` never shows the password (`SecretString` prints a placeholder).
#[derive(Debug, Clone)]
pub struct Login {
    /// The database user the password belongs to (e.g. `IAM:alice`).
    pub user: String,
    /// The temporary password.
    pub password: SecretString,
    /// When the password stops working, in Unix seconds.
    pub expiration: i64,
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

/// Where passwords come from. Blocking: the proxy calls it on `spawn_blocking`.
pub trait PasswordSource: Send + Sync + 'static {
    /// A login from the shared cache (`fresh = false`), or one forced past the cache
    /// (`fresh = true`, after the upstream rejected the cached password).
    fn login(&self, fresh: bool) -> Result<Login, SourceError>;

    /// Called on every new session; when the cached login is inside its refresh margin, the
    /// source refreshes it in the background. Must return quickly. The default does nothing.
    fn refresh_ahead(&self) {}

    /// How many fresh credentials this source has fetched so far (AWS calls or sign-ins),
    /// for `/metrics`. The default counts nothing.
    fn fetches(&self) -> u64 {
        0
    }
}
