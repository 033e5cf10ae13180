//! Where clients connect: Redshift host names, and the endpoint found with DescribeClusters.

use serde::{Deserialize, Serialize};

/// The default Redshift port.
pub(crate) const DEFAULT_PORT: u16 = 5439;

/// What a Redshift host name says about its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostInfo {
    /// The cluster identifier (the first label).
    pub cluster: String,
    /// The AWS region.
    pub region: String,
}

/// Reads a provisioned cluster's host name,
/// `<cluster>.<id>.<region>.redshift.amazonaws.com` or its `.amazonaws.com.cn`
/// form. Anything else, including names that only look similar, is `None`.
pub(crate) fn parse_host(host: &str) -> Option<HostInfo> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let rest = host
        .strip_suffix(".redshift.amazonaws.com")
        .or_else(|| host.strip_suffix(".redshift.amazonaws.com.cn"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    let [cluster, id, region] = labels.as_slice() else {
        return None;
    };
    crate::rules::cluster_identifier("host", cluster).ok()?;
    crate::rules::region("host", region).ok()?;
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let region_shaped =
        region.split('-').count() >= 3 && region.ends_with(|c: char| c.is_ascii_digit());
    (id_ok && region_shaped).then(|| HostInfo {
        cluster: cluster.to_string(),
        region: region.to_string(),
    })
}

/// A cluster's endpoint, as DescribeClusters reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    /// The host name.
    pub host: String,
    /// The port.
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioned_and_china_host_names() {
        let table = [
            (
                "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com",
                Some(("examplecluster", "us-west-2")),
            ),
            (
                "Prod-1.cdefgh123456.eu-central-1.redshift.amazonaws.com.",
                Some(("prod-1", "eu-central-1")),
            ),
            (
                "my-cluster.x1y2z3.cn-north-1.redshift.amazonaws.com.cn",
                Some(("my-cluster", "cn-north-1")),
            ),
            (
                "c.abc.us-gov-west-1.redshift.amazonaws.com",
                Some(("c", "us-gov-west-1")),
            ),
        ];
        for (host, want) in table {
            let got = parse_host(host).map(|i| (i.cluster, i.region));
            let want = want.map(|(c, r)| (c.to_string(), r.to_string()));
            assert_eq!(got, want, "{host}");
        }
    }

    #[test]
    fn names_that_must_not_match() {
        for host in [
            "",
            "localhost",
            "127.0.0.1",
            "db.example.com",
            "redshift.amazonaws.com",
            "examplecluster.redshift.amazonaws.com",
            "examplecluster.us-west-2.redshift.amazonaws.com",
            "a.b.c.us-west-2.redshift.amazonaws.com",
            "examplecluster.abc.us-west-2.redshift.amazonaws.com.evil.com",
            "examplecluster.abc.us-west-2.redshift-serverless.amazonaws.com",
            "examplecluster.abc.us-west-2.redshift.amazonaws.co",
            "bad_cluster.abc.us-west-2.redshift.amazonaws.com",
            "1cluster.abc.us-west-2.redshift.amazonaws.com",
            "examplecluster.ab-c.us-west-2.redshift.amazonaws.com",
            "examplecluster.abc.notaregion.redshift.amazonaws.com",
            "examplecluster..us-west-2.redshift.amazonaws.com",
        ] {
            assert_eq!(parse_host(host), None, "{host}");
        }
    }
}
