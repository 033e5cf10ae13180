//! The provisioned-cluster sources: GetClusterCredentials and DescribeClusters, through aws-sdk-redshift.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::entry::{CachedEndpoint, ENDPOINT_LIFETIME};
use redshift_creds_core::cache::refresh::{Clock, Fetch};
use redshift_creds_core::config::{Api, Request};
use redshift_creds_core::credential::Credential;
use redshift_creds_core::error::Error;
use secrecy::SecretString;

/// Fetches credentials for one request from the Redshift API.
pub(crate) struct RedshiftSource<'a> {
    /// What to ask for.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
}

impl Fetch<Credential> for RedshiftSource<'_> {
    fn fetch(&self) -> Result<Credential, Error> {
        self.session
            .call(self.request.api.name(), self.request, self.call())
    }
}

impl RedshiftSource<'_> {
    async fn call(&self) -> Result<Credential, Error> {
        let r = self.request;
        let api = r.api.name();
        let config = self.session.config().await;
        crate::session::require_region(config, r)?;
        let client = aws_sdk_redshift::Client::new(config);
        tracing::debug!(cluster = ?r.cluster_identifier, user = ?r.db_user, "calling {api}");
        let (db_user, password, expiration) = if r.api == Api::GetClusterCredentialsWithIam {
            let out = client
                .get_cluster_credentials_with_iam()
                .set_cluster_identifier(r.cluster_identifier.clone())
                .set_custom_domain_name(r.custom_domain_name.clone())
                .set_db_name(r.db_name.clone())
                .duration_seconds(r.duration_seconds as i32)
                .send()
                .await
                .map_err(|e| failure::from_sdk(api, r, e))?;
            (out.db_user, out.db_password, out.expiration)
        } else {
            let groups = (!r.db_groups.is_empty()).then(|| r.db_groups.clone());
            let out = client
                .get_cluster_credentials()
                .set_cluster_identifier(r.cluster_identifier.clone())
                .set_custom_domain_name(r.custom_domain_name.clone())
                .set_db_user(r.db_user.clone())
                .set_db_name(r.db_name.clone())
                .set_db_groups(groups)
                .auto_create(r.auto_create)
                .duration_seconds(r.duration_seconds as i32)
                .send()
                .await
                .map_err(|e| failure::from_sdk(api, r, e))?;
            (out.db_user, out.db_password, out.expiration)
        };
        crate::session::credential(
            r,
            db_user,
            password.map(SecretString::from),
            expiration.map(|t| t.secs()),
        )
    }
}

/// Finds a cluster's endpoint with DescribeClusters.
pub(crate) struct ClusterEndpointSource<'a> {
    /// Which cluster, and where the SDK looks.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
    /// For the entry's expiry.
    pub clock: &'a dyn Clock,
}

const DESCRIBE: &str = "DescribeClusters";

impl Fetch<CachedEndpoint> for ClusterEndpointSource<'_> {
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
        let endpoint = self.session.call(DESCRIBE, r, async {
            let config = self.session.config().await;
            crate::session::require_region(config, r)?;
            let client = aws_sdk_redshift::Client::new(config);
            tracing::debug!(%cluster, "calling {DESCRIBE}");
            let out = client
                .describe_clusters()
                .cluster_identifier(&cluster)
                .send()
                .await
                .map_err(|e| match failure::from_sdk(DESCRIBE, r, e) {
                    Error::Aws { reason, .. } if reason.starts_with("access denied") => fail(
                        format!(
                            "{reason}; the principal may hold only redshift:GetClusterCredentials"
                        ),
                        Some("pass --host (and --port) to give the endpoint".to_string()),
                    ),
                    other => other,
                })?;
            let found = out
                .clusters()
                .iter()
                .find(|c| c.cluster_identifier() == Some(cluster.as_str()))
                .and_then(|c| c.endpoint())
                .map(|e| (e.address(), e.port()));
            match found.map(|(a, p)| crate::session::endpoint(a, p)) {
                Some(Ok(Some(endpoint))) => Ok(endpoint),
                Some(Err(refused)) => {
                    Err(fail(refused, Some(failure::UNREADABLE_HINT.to_string())))
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
