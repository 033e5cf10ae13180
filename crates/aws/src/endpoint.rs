//! Finding an endpoint: one fetch for a cluster (DescribeClusters) or a workgroup (GetWorkgroup), and the checks on what either reports.

use crate::failure;
use crate::session::Session;
use redshift_creds_core::cache::entry::{CachedEndpoint, ENDPOINT_LIFETIME};
use redshift_creds_core::cache::refresh::{Clock, Fetch};
use redshift_creds_core::config::Request;
use redshift_creds_core::endpoint::{DEFAULT_PORT, Endpoint};
use redshift_creds_core::error::{AwsFailure, Error};

/// What an API reported (the lookups in redshift.rs and serverless.rs return it, spelled
/// out there so that they do not import this module back): the endpoint's address and
/// port, or `None` when the cluster or workgroup has no endpoint yet.
pub(crate) type Reported = Option<(Option<String>, Option<i32>)>;

/// Finds the endpoint of the request's workgroup, else of its cluster.
pub(crate) struct EndpointSource<'a> {
    /// Which cluster or workgroup, and where the SDK looks.
    pub request: &'a Request,
    /// The run's AWS session.
    pub session: &'a Session,
    /// For the entry's expiry.
    pub clock: &'a dyn Clock,
}

/// What differs between the two lookups besides the SDK call.
struct Lookup<'a> {
    /// The cluster's or workgroup's name.
    name: &'a str,
    /// Which it is.
    workgroup: bool,
    /// `cluster` or `workgroup`, for messages.
    what: &'static str,
    api: &'static str,
    /// What a principal allowed only the credential call holds.
    credential_permission: &'static str,
}

impl<'a> Lookup<'a> {
    /// A workgroup if the request names one, else its cluster.
    fn of(r: &'a Request) -> Result<Lookup<'a>, Error> {
        match (&r.workgroup, &r.cluster_identifier) {
            (Some(name), _) => Ok(Lookup {
                name,
                workgroup: true,
                what: "workgroup",
                api: "GetWorkgroup",
                credential_permission: "redshift-serverless:GetCredentials",
            }),
            (None, Some(name)) => Ok(Lookup {
                name,
                workgroup: false,
                what: "cluster",
                api: "DescribeClusters",
                credential_permission: "redshift:GetClusterCredentials",
            }),
            (None, None) => Err(Error::Usage(
                "pass --host: without a cluster identifier or a workgroup the endpoint cannot be found"
                    .into(),
            )),
        }
    }

    /// Asks the API; a denial says the principal may hold only the credential call.
    async fn ask(&self, config: &aws_config::SdkConfig, r: &Request) -> Result<Reported, Error> {
        let asked = if self.workgroup {
            crate::serverless::workgroup_endpoint(config, r, self.name).await
        } else {
            crate::redshift::cluster_endpoint(config, r, self.name).await
        };
        asked.map_err(|e| match e {
            Error::Aws {
                kind: kind @ AwsFailure::AccessDenied,
                reason,
                ..
            } => failure::aws(
                self.api,
                r,
                kind,
                format!(
                    "{reason}; the principal may hold only {}",
                    self.credential_permission
                ),
                Some("pass --host (and --port) to give the endpoint".to_string()),
            ),
            other => other,
        })
    }
}

impl Fetch<CachedEndpoint> for EndpointSource<'_> {
    fn fetch(&self) -> Result<CachedEndpoint, Error> {
        let r = self.request;
        let lookup = Lookup::of(r)?;
        let (api, what) = (lookup.api, lookup.what);
        let fail =
            |kind, reason: String, hint: String| failure::aws(api, r, kind, reason, Some(hint));
        let endpoint = self.session.call(api, r, async {
            let config = self.session.config().await;
            crate::session::require_region(config, r)?;
            tracing::debug!(name = lookup.name, "calling {api}");
            let found = match lookup.ask(config, r).await? {
                Some((address, port)) => checked(address.as_deref(), port).map_err(|refused| {
                    fail(
                        AwsFailure::BadAnswer,
                        refused,
                        failure::UNREADABLE_HINT.into(),
                    )
                })?,
                None => None,
            };
            found.ok_or_else(|| {
                fail(
                    AwsFailure::Unavailable,
                    format!("the {what} has no endpoint yet (is it still being created?)"),
                    format!("wait until the {what} is available, or pass --host"),
                )
            })
        })?;
        tracing::debug!(host = %endpoint.host, port = endpoint.port, "found the endpoint");
        Ok(CachedEndpoint {
            endpoint,
            expiration: self.clock.now() + ENDPOINT_LIFETIME,
        })
    }
}

/// Checks an endpoint an API reported: `Ok(None)` when it has none yet, an
/// error naming the rule when its address is not a host name or its port
/// is outside 1 to 65535 (a missing port is the Redshift default).
fn checked(address: Option<&str>, port: Option<i32>) -> Result<Option<Endpoint>, String> {
    let Some(host) = address else {
        return Ok(None);
    };
    if host.len() > 253 || redshift_creds_core::rules::host("address", host).is_err() {
        return Err(
            "the reported endpoint address was refused: it must be a DNS name or an IP address"
                .into(),
        );
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            format!("the reported endpoint port {p} was refused: it must be from 1 to 65535")
        })?,
    };
    Ok(Some(Endpoint {
        host: host.to_string(),
        port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redshift_creds_core::testing::request_with;

    #[test]
    fn a_workgroup_is_looked_up_with_get_workgroup_else_the_cluster() {
        let r = request_with(&["--workgroup", "analytics", "--db-name", "dev"], &[]);
        let lookup = Lookup::of(&r).unwrap();
        assert_eq!((lookup.name, lookup.workgroup), ("analytics", true));
        assert_eq!(lookup.api, "GetWorkgroup");
        let r = request_with(&[], &[]);
        let lookup = Lookup::of(&r).unwrap();
        assert_eq!((lookup.name, lookup.workgroup), ("examplecluster", false));
        assert_eq!(lookup.api, "DescribeClusters");
        let mut r = request_with(&[], &[]);
        r.cluster_identifier = None;
        let Err(e) = Lookup::of(&r) else {
            panic!("no cluster and no workgroup must fail")
        };
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_reported_endpoint_is_checked_before_use() {
        assert_eq!(checked(None, Some(5439)), Ok(None));
        let e = checked(Some("db.example.com"), None).unwrap().unwrap();
        assert_eq!((e.host.as_str(), e.port), ("db.example.com", DEFAULT_PORT));
        let refused = checked(Some("bad host!"), Some(5439)).unwrap_err();
        assert!(refused.contains("address was refused"), "{refused}");
        for port in [0, -1, 65_536] {
            let refused = checked(Some("db.example.com"), Some(port)).unwrap_err();
            assert!(
                refused.contains(&format!("port {port} was refused")),
                "{refused}"
            );
        }
    }
}
