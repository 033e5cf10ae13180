//! The only place that talks to AWS: a tokio runtime and aws-config, built on demand, per API.

mod failure;
mod redshift;

pub(crate) use redshift::{ClusterEndpointSource, RedshiftSource};

use crate::config::AwsTarget;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// Builds the single-threaded runtime the API path runs on. A cache hit never calls this.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Loads the AWS configuration through aws-config's default chain
/// (environment, profiles, SSO, credential_process, web identity, IMDS), with
/// the flags' profile, region and endpoint on top. `api_timeout` bounds each
/// whole operation, retries included.
pub(crate) async fn load_config(
    target: &AwsTarget,
    api_timeout: Duration,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(api_timeout)
                .connect_timeout(api_timeout.min(Duration::from_secs(5)))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        );
    if let Some(profile) = &target.profile_flag {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region_flag {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &target.endpoint_url_flag {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
