//! The Identity Center token fetch: GetIdentityCenterAuthToken for a cluster (Redshift) or a workgroup (Redshift Serverless), checked before anything of it is cached.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::refresh::{Clock, Fetch, SystemClock};
use redshift_creds_core::config::Request;
use redshift_creds_core::error::{AwsFailure, Error};
use redshift_creds_core::token::{self, IdcToken, TokenType};
use secrecy::{ExposeSecret, SecretString};

/// The operation, as both services spell it.
pub(crate) const API: &str = token::IDC_API;

/// Fetches a `SUBJECT_TOKEN` for the request's cluster or workgroup, with
/// the AWS credentials of the usual chain.
pub(crate) struct IdcSource<'a> {
    /// What to ask for.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
}

impl Fetch<IdcToken> for IdcSource<'_> {
    fn fetch(&self) -> Result<IdcToken, Error> {
        let r = self.request;
        self.session.call(API, r, async {
            let config = self.session.config().await;
            crate::session::require_region(config, r)?;
            let (token, expiration) = match &r.workgroup {
                Some(workgroup) => {
                    tracing::debug!(%workgroup, "calling redshift-serverless {API}");
                    crate::serverless::identity_center_token(config, r, workgroup).await?
                }
                None => {
                    let cluster = r.cluster_identifier.as_deref().unwrap_or_default();
                    tracing::debug!(%cluster, "calling redshift {API}");
                    crate::redshift::identity_center_token(config, r, cluster).await?
                }
            };
            checked(
                r,
                token.map(SecretString::from),
                expiration,
                SystemClock.now(),
            )
        })
    }
}

/// Builds the token from the answer's fields, or says which one is missing
/// or out of range (the cache is left as it was).
fn checked(
    r: &Request,
    token: Option<SecretString>,
    expiration: Option<i64>,
    now: i64,
) -> Result<IdcToken, Error> {
    let malformed = |reason: String| {
        failure::aws(
            API,
            r,
            AwsFailure::BadAnswer,
            reason,
            Some(failure::UNREADABLE_HINT.to_string()),
        )
    };
    let token = token
        .filter(|t| !t.expose_secret().is_empty())
        .ok_or_else(|| malformed("the response has no Token".into()))?;
    token::check_token(token.expose_secret())
        .map_err(|rule| malformed(format!("the response's Token was refused: {rule}")))?;
    let expiration =
        expiration.ok_or_else(|| malformed("the response has no ExpirationTime".into()))?;
    token::check_expiration(TokenType::SubjectToken, expiration, now)
        .map_err(|rule| malformed(format!("the response's ExpirationTime was refused: {rule}")))?;
    tracing::debug!(expiration, "received an Identity Center token");
    Ok(IdcToken {
        token,
        token_type: TokenType::SubjectToken,
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redshift_creds_core::testing::request_with;

    #[test]
    fn an_answer_is_checked_before_it_is_kept() {
        let r = request_with(&["--identity-center"], &[]);
        let now = 1_000_000;
        let ok = checked(&r, Some("tok".into()), Some(now + 3600), now).unwrap();
        assert_eq!(ok.expose_token(), "tok");
        assert_eq!(ok.token_type, TokenType::SubjectToken);
        for (token, exp, says) in [
            (None, Some(now + 3600), "no Token"),
            (Some(""), Some(now + 3600), "no Token"),
            (Some("a b"), Some(now + 3600), "Token was refused"),
            (Some("tok"), None, "no ExpirationTime"),
            (Some("tok"), Some(now + 7200), "ExpirationTime was refused"),
            (Some("tok"), Some(now), "ExpirationTime was refused"),
        ] {
            let e = checked(&r, token.map(SecretString::from), exp, now).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains(says) && shown.contains(API), "{shown}");
            assert!(matches!(
                e,
                Error::Aws {
                    kind: AwsFailure::BadAnswer,
                    ..
                }
            ));
        }
    }
}
