//! The Redshift Serverless sources: GetCredentials and GetWorkgroup, through aws-sdk-redshiftserverless.

use super::failure;
use crate::app::{Clock, Source};
use crate::cache::entry::{CachedEndpoint, ENDPOINT_LIFETIME};
use crate::config::Request;
use crate::credential::Credential;
use crate::endpoint::{DEFAULT_PORT, Endpoint};
use crate::error::Error;
use secrecy::SecretString;
use std::time::Duration;

/// Fetches credentials for a workgroup, as the caller's IAM identity.
pub(crate) struct ServerlessSource<'a> {
    /// What to ask for.
    pub request: &'a Request,
    /// The limit for the whole call, retries included.
    pub api_timeout: Duration,
}

impl Source<Credential> for ServerlessSource<'_> {
    fn fetch(&self) -> Result<Credential, Error> {
        let r = self.request;
        let api = r.api.name();
        let rt = super::runtime().map_err(|e| Error::Aws {
            api,
            target: failure::target(r),
            reason: format!("cannot start the async runtime: {e}"),
            hint: None,
        })?;
        rt.block_on(async {
            let config = super::load_config(&r.aws, self.api_timeout).await;
            super::require_region(&config, r)?;
            let client = aws_sdk_redshiftserverless::Client::new(&config);
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
            super::credential(
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
    /// The limit for the whole call, retries included.
    pub api_timeout: Duration,
    /// For the entry's expiry.
    pub clock: &'a dyn Clock,
}

const GET_WORKGROUP: &str = "GetWorkgroup";

impl Source<CachedEndpoint> for WorkgroupEndpointSource<'_> {
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
        let rt = super::runtime()
            .map_err(|e| fail(format!("cannot start the async runtime: {e}"), None))?;
        let endpoint = rt.block_on(async {
            let config = super::load_config(&r.aws, self.api_timeout).await;
            super::require_region(&config, r)?;
            let client = aws_sdk_redshiftserverless::Client::new(&config);
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
                .and_then(|e| e.address().map(|a| (a.to_string(), e.port())));
            match found {
                Some((host, port)) if crate::rules::host("host", &host).is_ok() => {
                    let port = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
                    Ok(Endpoint { host, port: port.unwrap_or(DEFAULT_PORT) })
                }
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
