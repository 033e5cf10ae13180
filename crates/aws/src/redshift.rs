//! The provisioned-cluster calls: GetClusterCredentials(WithIAM), GetIdentityCenterAuthToken and DescribeClusters, through aws-sdk-redshift.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::refresh::Fetch;
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

/// Asks DescribeClusters for `cluster`'s endpoint (for endpoint.rs).
pub(crate) async fn cluster_endpoint(
    config: &aws_config::SdkConfig,
    r: &Request,
    cluster: &str,
) -> Result<Option<(Option<String>, Option<i32>)>, Error> {
    let out = aws_sdk_redshift::Client::new(config)
        .describe_clusters()
        .cluster_identifier(cluster)
        .send()
        .await
        .map_err(|e| failure::from_sdk("DescribeClusters", r, e))?;
    Ok(out
        .clusters()
        .iter()
        .find(|c| c.cluster_identifier() == Some(cluster))
        .and_then(|c| c.endpoint())
        .map(|e| (e.address().map(str::to_owned), e.port())))
}

/// Asks GetIdentityCenterAuthToken for a token for `cluster` (for idc.rs):
/// the token and its expiry in seconds since the Unix epoch, as AWS sent them.
pub(crate) async fn identity_center_token(
    config: &aws_config::SdkConfig,
    r: &Request,
    cluster: &str,
) -> Result<(Option<String>, Option<i64>), Error> {
    let out = aws_sdk_redshift::Client::new(config)
        .get_identity_center_auth_token()
        .cluster_ids(cluster)
        .send()
        .await
        .map_err(|e| failure::from_sdk(redshift_creds_core::token::IDC_API, r, e))?;
    Ok((out.token, out.expiration_time.map(|t| t.secs())))
}
