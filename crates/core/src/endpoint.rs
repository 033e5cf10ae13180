//! Where clients connect: Redshift host names, and the endpoint found with DescribeClusters.

use serde::{Deserialize, Serialize};

/// The default Redshift port.
pub const DEFAULT_PORT: u16 = 5439;

/// What kind of Redshift endpoint a host name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A provisioned cluster: `<cluster>.<id>.<region>.redshift.amazonaws.com`.
    Cluster,
    /// A serverless workgroup: `<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com`.
    Workgroup,
}

/// What a Redshift host name says about its cluster or workgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Cluster or workgroup.
    pub kind: HostKind,
    /// The cluster identifier or workgroup name (the first label).
    pub name: String,
    /// The AWS region.
    pub region: String,
}

/// Reads a Redshift host name, provisioned or serverless, in the
/// `.amazonaws.com` or `.amazonaws.com.cn` form. Anything else, including
/// names that only look similar, is `None`.
pub fn parse_host(host: &str) -> Option<HostInfo> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let base = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (rest, kind) = match base.strip_suffix(".redshift-serverless") {
        Some(rest) => (rest, HostKind::Workgroup),
        None => (base.strip_suffix(".redshift")?, HostKind::Cluster),
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let [name, id, region] = labels.as_slice() else {
        return None;
    };
    match kind {
        HostKind::Cluster => crate::rules::cluster_identifier("host", name).ok()?,
        HostKind::Workgroup => crate::rules::workgroup("host", name).ok()?,
    }
    crate::rules::region("host", region).ok()?;
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let region_shaped =
        region.split('-').count() >= 3 && region.ends_with(|c: char| c.is_ascii_digit());
    (id_ok && region_shaped).then(|| HostInfo {
        kind,
        name: name.to_string(),
        region: region.to_string(),
    })
}

/// A cluster's endpoint, as DescribeClusters reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The host name.
    pub host: String,
    /// The port.
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serverless_host_names() {
        let table = [
            (
                "analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com",
                Some(("analytics", "us-east-1")),
            ),
            (
                "wg-1.123456789012.cn-northwest-1.redshift-serverless.amazonaws.com.cn",
                Some(("wg-1", "cn-northwest-1")),
            ),
            (
                "Analytics.123456789012.eu-west-1.redshift-serverless.amazonaws.com.",
                Some(("analytics", "eu-west-1")),
            ),
            (
                "ab.123456789012.us-east-1.redshift-serverless.amazonaws.com",
                None,
            ),
            (
                "analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com.evil",
                None,
            ),
            (
                "analytics.us-east-1.redshift-serverless.amazonaws.com",
                None,
            ),
            (
                "analytics.1234.us-east-1.redshiftserverless.amazonaws.com",
                None,
            ),
        ];
        for (host, want) in table {
            let got = parse_host(host);
            match want {
                Some((name, region)) => {
                    let got = got.unwrap_or_else(|| panic!("{host} did not parse"));
                    assert_eq!(got.kind, HostKind::Workgroup, "{host}");
                    assert_eq!(
                        (got.name.as_str(), got.region.as_str()),
                        (name, region),
                        "{host}"
                    );
                }
                None => assert_eq!(got, None, "{host}"),
            }
        }
    }

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
            let got = parse_host(host).map(|i| {
                assert_eq!(i.kind, HostKind::Cluster);
                (i.name, i.region)
            });
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
