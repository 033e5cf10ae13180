//! What the proxy counts for `/metrics`, and its rendering in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::source::PasswordSource;

/// Why a connection was refused, as the `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusedBy {
    /// The peer check: a uid that is not allowed, or a peer that cannot be identified.
    Uid,
    /// A limit: `--max-connections`, the starting caps, the descriptor budget.
    Limit,
    /// The proxy is shutting down.
    Draining,
}

/// The proxy's counters. Open connections are the gate's count, read when rendered.
#[derive(Default)]
pub(crate) struct Metrics {
    pub connections_total: AtomicU64,
    refused_uid: AtomicU64,
    refused_limit: AtomicU64,
    refused_draining: AtomicU64,
    pub login_failures: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// What one target adds to `/metrics`: its name, its password source and the expiry of
/// the last login it used.
pub(crate) struct TargetMetrics<'a> {
    pub name: &'a str,
    pub source: &'a Arc<dyn PasswordSource>,
    pub expiry: &'a AtomicI64,
}

impl Metrics {
    pub(crate) fn refused(&self, by: RefusedBy) {
        let c = match by {
            RefusedBy::Uid => &self.refused_uid,
            RefusedBy::Limit => &self.refused_limit,
            RefusedBy::Draining => &self.refused_draining,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4) of every metric.
    pub(crate) fn render(&self, open: usize, targets: &[TargetMetrics<'_>]) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: u64| vec![(String::new(), v.to_string())];
        one(
            "redshift_creds_proxy_open_connections",
            "gauge",
            "Sessions open now.",
            &plain(open as u64),
        );
        one(
            "redshift_creds_proxy_connections_total",
            "counter",
            "Sessions started (logged in upstream or not).",
            &plain(get(&self.connections_total)),
        );
        one(
            "redshift_creds_proxy_refused_total",
            "counter",
            "Connections refused, by reason.",
            &[
                (
                    r#"{reason="uid"}"#.into(),
                    get(&self.refused_uid).to_string(),
                ),
                (
                    r#"{reason="limit"}"#.into(),
                    get(&self.refused_limit).to_string(),
                ),
                (
                    r#"{reason="draining"}"#.into(),
                    get(&self.refused_draining).to_string(),
                ),
            ],
        );
        one(
            "redshift_creds_proxy_login_failures_total",
            "counter",
            "Sessions whose upstream login failed.",
            &plain(get(&self.login_failures)),
        );
        // A source shared by several targets is counted once.
        let mut seen: Vec<*const ()> = Vec::new();
        let mut fetches = 0;
        for t in targets {
            let p = Arc::as_ptr(t.source).cast::<()>();
            if !seen.contains(&p) {
                seen.push(p);
                fetches += t.source.fetches();
            }
        }
        one(
            "redshift_creds_credential_fetches_total",
            "counter",
            "Fresh credentials fetched (AWS calls or sign-ins that made one).",
            &plain(fetches),
        );
        let expiries: Vec<(String, String)> = targets
            .iter()
            .filter(|t| t.expiry.load(Ordering::Relaxed) > 0)
            .map(|t| {
                (
                    format!("{{target=\"{}\"}}", label_value(t.name)),
                    t.expiry.load(Ordering::Relaxed).to_string(),
                )
            })
            .collect();
        one(
            "redshift_creds_credential_expiry_timestamp_seconds",
            "gauge",
            "When the credential last used for each target expires (Unix seconds).",
            &expiries,
        );
        one(
            "redshift_creds_proxy_bytes_total",
            "counter",
            "Bytes relayed: in from clients, out to clients.",
            &[
                (
                    r#"{direction="in"}"#.into(),
                    get(&self.bytes_in).to_string(),
                ),
                (
                    r#"{direction="out"}"#.into(),
                    get(&self.bytes_out).to_string(),
                ),
            ],
        );
        out
    }
}

/// A label value escaped as the text format requires: backslash, quote and newline.
fn label_value(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Login, SourceError};

    struct Counting(u64);
    impl PasswordSource for Counting {
        fn login(&self, _: bool) -> Result<Login, SourceError> {
            Err(SourceError {
                message: "none".into(),
                sqlstate: "08001",
            })
        }
        fn fetches(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn renders_every_metric_with_a_shared_source_counted_once() {
        let m = Metrics::default();
        m.connections_total.store(3, Ordering::Relaxed);
        m.refused(RefusedBy::Uid);
        m.refused(RefusedBy::Limit);
        m.refused(RefusedBy::Limit);
        m.bytes_in.store(10, Ordering::Relaxed);
        let shared: Arc<dyn PasswordSource> = Arc::new(Counting(2));
        let other: Arc<dyn PasswordSource> = Arc::new(Counting(5));
        let (e1, e2, e3) = (
            AtomicI64::new(1_900_000_000),
            AtomicI64::new(0),
            AtomicI64::new(7),
        );
        let text = m.render(
            1,
            &[
                TargetMetrics {
                    name: "a\"b",
                    source: &shared,
                    expiry: &e1,
                },
                TargetMetrics {
                    name: "c",
                    source: &shared,
                    expiry: &e2,
                },
                TargetMetrics {
                    name: "d",
                    source: &other,
                    expiry: &e3,
                },
            ],
        );
        for line in [
            "redshift_creds_proxy_open_connections 1",
            "redshift_creds_proxy_connections_total 3",
            r#"redshift_creds_proxy_refused_total{reason="uid"} 1"#,
            r#"redshift_creds_proxy_refused_total{reason="limit"} 2"#,
            r#"redshift_creds_proxy_refused_total{reason="draining"} 0"#,
            "redshift_creds_proxy_login_failures_total 0",
            "redshift_creds_credential_fetches_total 7",
            r#"redshift_creds_credential_expiry_timestamp_seconds{target="a\"b"} 1900000000"#,
            r#"redshift_creds_credential_expiry_timestamp_seconds{target="d"} 7"#,
            r#"redshift_creds_proxy_bytes_total{direction="in"} 10"#,
            r#"redshift_creds_proxy_bytes_total{direction="out"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains(r#"target="c""#), "no login yet, no expiry");
    }
}
