//! The provisioned-cluster sources: GetClusterCredentials and DescribeClusters, through aws-sdk-redshift.

use super::failure;
use crate::app::{Clock, Source};
use crate::cache::entry::{CachedEndpoint, ENDPOINT_LIFETIME};
use crate::config::Request;
use crate::credential::Credential;
use crate::endpoint::{DEFAULT_PORT, Endpoint};
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

impl Source<Credential> for RedshiftSource<'_> {
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

/// Finds a cluster's endpoint with DescribeClusters.
pub(crate) struct ClusterEndpointSource<'a> {
    /// Which cluster, and where the SDK looks.
    pub request: &'a Request,
    /// The limit for the whole call, retries included.
    pub api_timeout: Duration,
    /// For the entry's expiry.
    pub clock: &'a dyn Clock,
}

const DESCRIBE: &str = "DescribeClusters";

impl Source<CachedEndpoint> for ClusterEndpointSource<'_> {
    fn fetch(&self) -> Result<CachedEndpoint, Error> {
        let r = self.request;
        let fail = |reason: String, hint: Option<String>| Error::Aws {
            api: DESCRIBE,
            target: failure::target(r),
            reason,
            hint,
        };
        let cluster = r.cluster_identifier.clone().ok_or_else(|| {
            Error::Usage(
                "pass --host: without a cluster identifier the endpoint cannot be found".into(),
            )
        })?;
        let rt = super::runtime()
            .map_err(|e| fail(format!("cannot start the async runtime: {e}"), None))?;
        let endpoint = rt.block_on(async {
            let config = super::load_config(&r.aws, self.api_timeout).await;
            if config.region().is_none() {
                return Err(Error::Usage(format!(
                    "no AWS region for {}: pass --region, set AWS_REGION, or set region in the profile \"{}\"",
                    r.describe(),
                    r.aws.effective_profile
                )));
            }
            let client = aws_sdk_redshift::Client::new(&config);
            tracing::debug!(%cluster, "calling {DESCRIBE}");
            let out = client
                .describe_clusters()
                .cluster_identifier(&cluster)
                .send()
                .await
                .map_err(|e| match failure::from_sdk(DESCRIBE, r, e) {
                    Error::Aws { reason, .. } if reason.starts_with("access denied") => fail(
                        format!("{reason}; the principal may hold only redshift:GetClusterCredentials"),
                        Some("pass --host (and --port) to give the endpoint".to_string()),
                    ),
                    other => other,
                })?;
            let found = out
                .clusters()
                .iter()
                .find(|c| c.cluster_identifier() == Some(cluster.as_str()))
                .and_then(|c| c.endpoint())
                .and_then(|e| e.address().map(|a| (a.to_string(), e.port())));
            match found {
                Some((host, port)) if crate::rules::host("host", &host).is_ok() => {
                    let port = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
                    Ok(Endpoint { host, port: port.unwrap_or(DEFAULT_PORT) })
                }
                _ => Err(fail(
                    "the cluster has no endpoint yet (is it still being created?)".to_string(),
                    Some("wait until the cluster is available, or pass --host".to_string()),
                )),
            }
        })?;
        tracing::debug!(host = %endpoint.host, port = endpoint.port, "found the endpoint");
        Ok(CachedEndpoint {
            endpoint,
            expiration: self.clock.now() + ENDPOINT_LIFETIME,
        })
    }
}
