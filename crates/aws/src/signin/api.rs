//! The SSO-OIDC calls of the sign-in (RegisterClient, CreateToken with the code or the refresh token), unsigned, through the SDK at the region's endpoint.

use aws_sdk_ssooidc::config::http::HttpResponse;
use aws_sdk_ssooidc::error::{ProvideErrorMetadata, SdkError};
use redshift_creds_core::cache::refresh::{Clock, SystemClock};
use redshift_creds_core::config::AwsScope;
use redshift_creds_core::error::{AwsFailure, Error, display_value};
use redshift_creds_core::signin::entries::{Registration, Tokens, check_opaque};
use redshift_creds_core::token::TokenType;
use secrecy::{ExposeSecret, SecretString};
use std::error::Error as StdError;
use std::time::Duration;

/// The scope Redshift's Identity Center applications grant.
pub(crate) const SCOPE: &str = "redshift:connect";

/// One SSO-OIDC client for the run, built on the first call.
pub(crate) struct Oidc {
    endpoint: String,
    region: String,
    issuer_url: String,
    api_timeout: Duration,
    runtime: std::cell::OnceCell<tokio::runtime::Runtime>,
    client: std::cell::OnceCell<aws_sdk_ssooidc::Client>,
}

impl Oidc {
    pub(crate) fn new(
        endpoint: &str,
        region: &str,
        issuer_url: &str,
        api_timeout: Duration,
    ) -> Oidc {
        Oidc {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            issuer_url: issuer_url.to_string(),
            api_timeout,
            runtime: std::cell::OnceCell::new(),
            client: std::cell::OnceCell::new(),
        }
    }

    fn run<T>(
        &self,
        api: &'static str,
        work: impl AsyncFnOnce(&aws_sdk_ssooidc::Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.runtime.get().is_none() {
            let rt = crate::session::runtime().map_err(|e| {
                self.failure(
                    api,
                    AwsFailure::NotSent,
                    format!("cannot start the async runtime: {e}"),
                )
            })?;
            let _ = self.runtime.set(rt);
        }
        let rt = self.runtime.get().expect("set above");
        rt.block_on(async {
            if self.client.get().is_none() {
                // The same connector, proxy and timeouts as every other call;
                // the endpoint is the one the sign-in page is on.
                let scope = AwsScope {
                    region: Some(self.region.clone()),
                    endpoint_url: Some(self.endpoint.clone()),
                    ..AwsScope::default()
                };
                let config = crate::session::load_config(&scope, self.api_timeout).await;
                let _ = self.client.set(aws_sdk_ssooidc::Client::new(&config));
            }
            work(self.client.get().expect("set above")).await
        })
    }

    fn failure(&self, api: &'static str, kind: AwsFailure, reason: String) -> Error {
        Error::Aws {
            api,
            target: format!("Identity Center issuer {}", display_value(&self.issuer_url)),
            kind,
            reason,
            hint: None,
        }
    }

    fn sdk_failure<E>(&self, api: &'static str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let (kind, reason) = match &err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().unwrap_or("an unreadable error");
                let said = ctx
                    .err()
                    .message()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                let kind = match code {
                    "InvalidGrantException"
                    | "ExpiredTokenException"
                    | "AccessDeniedException"
                    | "InvalidClientException"
                    | "UnauthorizedClientException" => AwsFailure::AccessDenied,
                    "SlowDownException" => AwsFailure::Throttled,
                    "InternalServerException" => AwsFailure::Unavailable,
                    _ => AwsFailure::Other,
                };
                (kind, format!("{code}{said}"))
            }
            SdkError::TimeoutError(_) => {
                (AwsFailure::Timeout, "the API did not answer in time".into())
            }
            _ => (
                AwsFailure::NotSent,
                format!(
                    "the request could not be sent: {}",
                    crate::failure::chain(&err)
                ),
            ),
        };
        self.failure(api, kind, reason)
    }

    fn bad_answer(&self, api: &'static str, what: &str) -> Error {
        self.failure(
            api,
            AwsFailure::BadAnswer,
            format!("the response's {what} is missing or was refused"),
        )
    }

    /// RegisterClient: a public client for the authorization-code and
    /// refresh-token grants, sent back to `redirect_uri` only.
    pub(crate) fn register(
        &self,
        display_name: &str,
        redirect_uri: &str,
    ) -> Result<Registration, Error> {
        const API: &str = "RegisterClient";
        let out = self.run(API, async |c| {
            c.register_client()
                .client_name(display_name)
                .client_type("public")
                .scopes(SCOPE)
                .grant_types("authorization_code")
                .grant_types("refresh_token")
                .redirect_uris(redirect_uri)
                .issuer_url(&self.issuer_url)
                .send()
                .await
                .map_err(|e| self.sdk_failure(API, e))
        })?;
        let id = out
            .client_id()
            .filter(|v| check_opaque(v, 1024).is_ok())
            .ok_or_else(|| self.bad_answer(API, "clientId"))?;
        let secret = out
            .client_secret()
            .filter(|v| check_opaque(v, 4096).is_ok())
            .ok_or_else(|| self.bad_answer(API, "clientSecret"))?;
        let now = SystemClock.now();
        let expires = out.client_secret_expires_at();
        if expires <= now {
            return Err(self.bad_answer(API, "clientSecretExpiresAt"));
        }
        Ok(Registration {
            client_id: id.to_string(),
            client_secret: SecretString::from(secret),
            expiration: expires,
        })
    }

    /// CreateToken with the authorization code and its PKCE verifier.
    pub(crate) fn redeem(
        &self,
        reg: &Registration,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<Tokens, Error> {
        const API: &str = "CreateToken";
        self.create_token(API, |b| {
            b.client_id(&reg.client_id)
                .client_secret(reg.client_secret.expose_secret())
                .grant_type("authorization_code")
                .code(code.expose_secret())
                .code_verifier(verifier.expose_secret())
                .redirect_uri(redirect_uri)
        })
    }

    /// CreateToken with the refresh token: a new access token, no browser.
    pub(crate) fn renew(
        &self,
        reg: &Registration,
        refresh: &SecretString,
    ) -> Result<Tokens, Error> {
        self.create_token("CreateToken", |b| {
            b.client_id(&reg.client_id)
                .client_secret(reg.client_secret.expose_secret())
                .grant_type("refresh_token")
                .refresh_token(refresh.expose_secret())
        })
    }

    fn create_token(
        &self,
        api: &'static str,
        fill: impl FnOnce(
            aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder,
        ) -> aws_sdk_ssooidc::operation::create_token::builders::CreateTokenFluentBuilder,
    ) -> Result<Tokens, Error> {
        let out = self.run(api, async |c| {
            fill(c.create_token())
                .send()
                .await
                .map_err(|e| self.sdk_failure(api, e))
        })?;
        let access = out
            .access_token()
            .filter(|v| redshift_creds_core::token::check_token(v).is_ok())
            .ok_or_else(|| self.bad_answer(api, "accessToken"))?;
        let refresh = match out.refresh_token() {
            None | Some("") => None,
            Some(r) if check_opaque(r, 6144).is_ok() => Some(SecretString::from(r)),
            Some(_) => return Err(self.bad_answer(api, "refreshToken")),
        };
        let lifetime = i64::from(out.expires_in());
        let longest = TokenType::AccessToken.max_lifetime() - 60;
        if !(redshift_creds_core::token::MIN_EXPIRY_AHEAD..=longest).contains(&lifetime) {
            return Err(self.bad_answer(api, "expiresIn"));
        }
        Ok(Tokens {
            access_token: SecretString::from(access),
            refresh_token: refresh,
            expiration: SystemClock.now() + lifetime,
        })
    }
}
