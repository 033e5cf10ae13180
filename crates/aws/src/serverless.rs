//! The Redshift Serverless sources: GetCredentials and GetWorkgroup, through aws-sdk-redshiftserverless.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::entry::{CachedEndpoint, ENDPOINT_LIFETIME};
use redshift_creds_core::cache::refresh::{Clock, Fetch};
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

/// Finds a workgroup's endpoint with GetWorkgroup.
pub(crate) struct WorkgroupEndpointSource<'a> {
    /// Which workgroup, and where the SDK looks.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
    /// For the entry's expiry.
    pub clock: &'a dyn Clock,
}

const GET_WORKGROUP: &str = "GetWorkgroup";

impl Fetch<CachedEndpoint> for WorkgroupEndpointSource<'_> {
    fn fetch(&self) -> Result<CachedEndpoint, Error> {
        let r = self.request;
        let fail = |reason: String, hint: Option<String>| Error::Aws {
            api: GET_WORKGROUP,
            target: failure::target(r),
            reason,
            hint,
        };
        let workgroup = r
            .workgroup
            .clone()
            .ok_or_else(|| Error::Usage("pass --host or --workgroup".into()))?;
        let endpoint = self.session.call(GET_WORKGROUP, r, async {
            let config = self.session.config().await;
            crate::session::require_region(config, r)?;
            let client = aws_sdk_redshiftserverless::Client::new(config);
            let out = client
                .get_workgroup()
                .workgroup_name(&workgroup)
                .send()
                .await
                .map_err(|e| match failure::from_sdk(GET_WORKGROUP, r, e) {
                    Error::Aws { reason, .. } if reason.starts_with("access denied") => fail(
                        format!("{reason}; the principal may hold only redshift-serverless:GetCredentials"),
                        Some("pass --host (and --port) to give the endpoint".to_string()),
                    ),
                    other => other,
                })?;
            let found = out
                .workgroup()
                .and_then(|w| w.endpoint())
                .map(|e| (e.address(), e.port()));
            match found.map(|(a, p)| crate::session::endpoint(a, p)) {
                Some(Ok(Some(endpoint))) => Ok(endpoint),
                Some(Err(refused)) => Err(fail(refused, Some(failure::UNREADABLE_HINT.to_string()))),
                _ => Err(fail(
                    "the workgroup has no endpoint yet".to_string(),
                    Some("wait until the workgroup is available, or pass --host".to_string()),
                )),
            }
        })?;
        Ok(CachedEndpoint {
            endpoint,
            expiration: self.clock.now() + ENDPOINT_LIFETIME,
        })
    }
}
