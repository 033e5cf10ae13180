//! One AWS session per run: the tokio runtime and the AWS configuration, each built at most once and only when an API must be called.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use redshift_creds_core::config::{AwsScope, Request};
use redshift_creds_core::credential::Credential;
use redshift_creds_core::error::{AwsFailure, Error};
use secrecy::SecretString;
use std::time::Duration;

/// The runtime and the AWS configuration of one run, built on first use and
/// shared by every API call of the run, so a cold `exec` (endpoint, then
/// credential) loads the configuration, and runs a `credential_process`, once.
pub(crate) struct Session {
    target: AwsScope,
    api_timeout: Duration,
    runtime: std::cell::OnceCell<tokio::runtime::Runtime>,
    config: std::cell::OnceCell<aws_config::SdkConfig>,
}

impl Session {
    /// A session for this AWS target; builds nothing yet.
    pub(crate) fn new(target: &AwsScope, api_timeout: Duration) -> Session {
        Session {
            target: target.clone(),
            api_timeout,
            runtime: std::cell::OnceCell::new(),
            config: std::cell::OnceCell::new(),
        }
    }

    /// Runs `work` on the session's runtime, building it on first use.
    pub(crate) fn block_on<F: std::future::Future>(&self, work: F) -> std::io::Result<F::Output> {
        if self.runtime.get().is_none() {
            let _ = self.runtime.set(runtime()?);
        }
        Ok(self.runtime.get().expect("set above").block_on(work))
    }

    /// Runs one call of `api` for `r`: a runtime that cannot start is that call's failure.
    pub(crate) fn call<T>(
        &self,
        api: &'static str,
        r: &Request,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.block_on(work).map_err(|e| {
            crate::failure::aws(
                api,
                r,
                AwsFailure::NotSent,
                format!("cannot start the async runtime: {e}"),
                None,
            )
        })?
    }

    /// The AWS configuration, loaded on first use.
    pub(crate) async fn config(&self) -> &aws_config::SdkConfig {
        if let Some(config) = self.config.get() {
            return config;
        }
        let loaded = load_config(&self.target, self.api_timeout).await;
        self.config.get_or_init(|| loaded)
    }
}

/// Builds the single-threaded runtime the API path runs on. A cache hit never calls this.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Loads the AWS configuration through aws-config's default chain
/// (environment, profiles, SSO, credential_process, web identity, IMDS), with
/// the profile, region and endpoint in force on top. `api_timeout` bounds each
/// whole operation, retries included.
pub(crate) async fn load_config(target: &AwsScope, api_timeout: Duration) -> aws_config::SdkConfig {
    // The connector of every AWS call: rustls on ring, through the proxy
    // that HTTPS_PROXY/https_proxy, HTTP_PROXY/http_proxy or ALL_PROXY name,
    // except for the hosts in NO_PROXY/no_proxy, as the AWS CLI does. An
    // https:// endpoint goes through the proxy by CONNECT: TLS stays end to end.
    let https =
        aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
            let mut builder = aws_smithy_http_client::Connector::builder()
                .proxy_config(aws_smithy_http_client::proxy::ProxyConfig::from_env());
            builder.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build()
        });
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
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
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Fails with a usage error when no region is known: the SDK cannot sign without one.
pub(crate) fn require_region(config: &aws_config::SdkConfig, r: &Request) -> Result<(), Error> {
    if config.region().is_some() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "no AWS region for {}: pass --region, set AWS_REGION, or set region in the profile \"{}\"",
        r.describe(),
        r.aws.effective_profile
    )))
}

/// Builds a credential from a response's fields, or says which one is
/// missing or out of range (the cache is left as it was). Nothing from the
/// answer is cached, printed or handed on before it passes these checks.
pub(crate) fn credential(
    r: &Request,
    db_user: Option<String>,
    password: Option<SecretString>,
    expiration: Option<i64>,
) -> Result<Credential, Error> {
    use redshift_creds_core::cache::refresh::{Clock, SystemClock};
    use redshift_creds_core::credential::{check_db_user, check_expiration, check_password};
    use secrecy::ExposeSecret;
    let malformed = |reason: String| {
        crate::failure::aws(
            r.api.name(),
            r,
            AwsFailure::BadAnswer,
            reason,
            Some(crate::failure::UNREADABLE_HINT.to_string()),
        )
    };
    let missing = |field: &str| malformed(format!("the response has no {field}"));
    let refused =
        |field: &str, rule: &str| malformed(format!("the response's {field} was refused: {rule}"));
    let db_user = db_user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| missing("DbUser"))?;
    check_db_user(&db_user).map_err(|rule| refused("DbUser", rule))?;
    let password = password
        .filter(|p| !p.expose_secret().is_empty())
        .ok_or_else(|| missing("DbPassword"))?;
    check_password(password.expose_secret()).map_err(|rule| refused("DbPassword", rule))?;
    let expiration = expiration.ok_or_else(|| missing("Expiration"))?;
    check_expiration(expiration, SystemClock.now()).map_err(|rule| refused("Expiration", rule))?;
    tracing::debug!(%db_user, expiration, "received credentials");
    Ok(Credential {
        db_user,
        password,
        expiration,
    })
}

/// What `doctor` learns from the AWS SDK: the region it would sign for, and
/// the credentials with their principal (from STS) or why they fail, with the
/// underlying cause. Never the secret key.
pub(crate) struct AwsCheck {
    pub region: Option<String>,
    pub identity: Result<String, String>,
}

/// Loads the AWS configuration for `target` as `get` would, then resolves
/// the credentials and asks STS GetCallerIdentity who they belong to.
pub(crate) fn check(target: &AwsScope, api_timeout: Duration) -> AwsCheck {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            return AwsCheck {
                region: None,
                identity: Err(format!("cannot start the async runtime: {e}")),
            };
        }
    };
    rt.block_on(async {
        let config = load_config(target, api_timeout).await;
        let region = config.region().map(ToString::to_string);
        let identity = identity(&config).await;
        AwsCheck { region, identity }
    })
}

async fn identity(config: &aws_config::SdkConfig) -> Result<String, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| "no credentials provider is configured".to_string())?;
    let creds = provider.provide_credentials().await.map_err(|e| {
        format!(
            "{}; sign in again (for example `aws sso login`)",
            crate::failure::chain(&e)
        )
    })?;
    let id = creds.access_key_id();
    let shown = if id.len() > 8 {
        format!("{}...{}", &id[..4], &id[id.len() - 4..])
    } else {
        "***".into()
    };
    if config.region().is_none() {
        return Err(format!(
            "resolve (access key {shown}), but with no region the principal cannot be checked"
        ));
    }
    let sts = aws_sdk_sts::Client::new(config);
    match sts.get_caller_identity().send().await {
        Ok(who) => Ok(format!(
            "resolve (access key {shown}) to {} in account {}",
            who.arn().unwrap_or("an unknown principal"),
            who.account().unwrap_or("?")
        )),
        Err(e) => {
            use aws_sdk_sts::error::ProvideErrorMetadata;
            let why = match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                // dispatch failure: io error: ... dns error: failed to lookup address
                _ => crate::failure::chain(&e),
            };
            Err(format!(
                "resolve (access key {shown}), but STS GetCallerIdentity failed: {why}"
            ))
        }
    }
}
