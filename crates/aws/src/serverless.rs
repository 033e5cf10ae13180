//! The Redshift Serverless calls: GetCredentials, GetIdentityCenterAuthToken and GetWorkgroup, through aws-sdk-redshiftserverless.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::refresh::Fetch;
use redshift_creds_core::config::Request;
use redshift_creds_core::credential::Credential;
use redshift_creds_core::error::Error;
use secrecy::SecretString;

/// Fetches credentials for a workgroup, as the caller's IAM identity.
pub(crate) struct ServerlessSource<'a> {
    /// What to ask for.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
}

impl Fetch<Credential> for ServerlessSource<'_> {
    fn fetch(&self) -> Result<Credential, Error> {
        let r = self.request;
        let api = r.api.name();
        self.session.call(api, r, async {
            let config = self.session.config().await;
            crate::session::require_region(config, r)?;
            let client = aws_sdk_redshiftserverless::Client::new(config);
            tracing::debug!(workgroup = ?r.workgroup, "calling {api}");
            let out = client
                .get_credentials()
                .set_workgroup_name(r.workgroup.clone())
                .set_custom_domain_name(r.custom_domain_name.clone())
                .set_db_name(r.db_name.clone())
                .duration_seconds(r.duration_seconds as i32)
                .send()
                .await
                .map_err(|e| failure::from_sdk(api, r, e))?;
            crate::session::credential(
                r,
                out.db_user,
                out.db_password.map(SecretString::from),
                out.expiration.map(|t| t.secs()),
            )
        })
    }
}

/// Asks GetWorkgroup for `workgroup`'s endpoint (for endpoint.rs).
pub(crate) async fn workgroup_endpoint(
    config: &aws_config::SdkConfig,
    r: &Request,
    workgroup: &str,
) -> Result<Option<(Option<String>, Option<i32>)>, Error> {
    let out = aws_sdk_redshiftserverless::Client::new(config)
        .get_workgroup()
        .workgroup_name(workgroup)
        .send()
        .await
        .map_err(|e| failure::from_sdk("GetWorkgroup", r, e))?;
    Ok(out
        .workgroup()
        .and_then(|w| w.endpoint())
        .map(|e| (e.address().map(str::to_owned), e.port())))
}

/// Asks GetIdentityCenterAuthToken for a token for `workgroup` (for idc.rs):
/// the token and its expiry in seconds since the Unix epoch, as AWS sent them.
pub(crate) async fn identity_center_token(
    config: &aws_config::SdkConfig,
    r: &Request,
    workgroup: &str,
) -> Result<(Option<String>, Option<i64>), Error> {
    let out = aws_sdk_redshiftserverless::Client::new(config)
        .get_identity_center_auth_token()
        .workgroup_names(workgroup)
        .send()
        .await
        .map_err(|e| failure::from_sdk(redshift_creds_core::token::IDC_API, r, e))?;
    Ok((out.token, out.expiration_time.map(|t| t.secs())))
}
