//! The GetClusterCredentials source: one call through aws-sdk-redshift.

use super::failure;
use crate::app::CredentialSource;
use crate::config::Request;
use crate::credential::Credential;
use crate::error::Error;
use secrecy::SecretString;
use std::time::Duration;

/// Fetches credentials for one request from the Redshift API.
pub(crate) struct RedshiftSource<'a> {
    /// What to ask for.
    pub request: &'a Request,
    /// The limit for the whole call, retries included.
    pub api_timeout: Duration,
}

const API: &str = "GetClusterCredentials";

impl CredentialSource for RedshiftSource<'_> {
    fn fetch(&self) -> Result<Credential, Error> {
        let rt = super::runtime().map_err(|e| Error::Aws {
            api: API,
            target: failure::target(self.request),
            reason: format!("cannot start the async runtime: {e}"),
            hint: None,
        })?;
        rt.block_on(self.call())
    }
}

impl RedshiftSource<'_> {
    async fn call(&self) -> Result<Credential, Error> {
        let r = self.request;
        let config = super::load_config(&r.aws, self.api_timeout).await;
        if config.region().is_none() {
            return Err(Error::Usage(format!(
                "no AWS region for {}: pass --region, set AWS_REGION, or set region in the profile \"{}\"",
                r.describe(),
                r.aws.effective_profile
            )));
        }
        let client = aws_sdk_redshift::Client::new(&config);
        let groups = (!r.db_groups.is_empty()).then(|| r.db_groups.clone());
        tracing::debug!(cluster = ?r.cluster_identifier, user = %r.db_user, "calling {API}");
        let out = client
            .get_cluster_credentials()
            .set_cluster_identifier(r.cluster_identifier.clone())
            .set_custom_domain_name(r.custom_domain_name.clone())
            .db_user(&r.db_user)
            .set_db_name(r.db_name.clone())
            .set_db_groups(groups)
            .auto_create(r.auto_create)
            .duration_seconds(r.duration_seconds as i32)
            .send()
            .await
            .map_err(|e| failure::from_sdk(API, r, e))?;
        let malformed = |field: &str| Error::Aws {
            api: API,
            target: failure::target(r),
            reason: format!("the response has no {field}"),
            hint: Some(failure::UNREADABLE_HINT.to_string()),
        };
        let db_user = out
            .db_user
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| malformed("DbUser"))?;
        let password = out
            .db_password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| malformed("DbPassword"))?;
        let expiration = out
            .expiration
            .map(|t| t.secs())
            .ok_or_else(|| malformed("Expiration"))?;
        tracing::debug!(%db_user, expiration, "received credentials");
        Ok(Credential {
            db_user,
            password,
            expiration,
        })
    }
}
