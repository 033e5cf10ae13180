//! Turns SDK errors into one clear message and a hint about what to do.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_redshift::config::http::HttpResponse;
use aws_sdk_redshift::error::{ProvideErrorMetadata, SdkError};
use redshift_creds_core::config::Request;
use redshift_creds_core::error::{AwsFailure, Error};
use std::error::Error as StdError;

/// What to do about a response we could not read.
pub(crate) const UNREADABLE_HINT: &str = "check --endpoint-url; the cache was left as it was";

/// Maps a failed SDK call to [`Error::Aws`], naming the cluster and user,
/// classifying it once, and saying what to do where we know.
pub(crate) fn from_sdk<E>(
    api: &'static str,
    request: &Request,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let (kind, reason, hint) = match &err {
        SdkError::ServiceError(ctx) => match ctx.err().code() {
            Some(code) => classify_code(api, code, ctx.err().message(), request),
            None => (
                AwsFailure::BadAnswer,
                format!(
                    "the API sent a response that could not be read (HTTP {})",
                    ctx.raw().status().as_u16()
                ),
                Some(UNREADABLE_HINT.to_string()),
            ),
        },
        SdkError::TimeoutError(_) => (
            AwsFailure::Timeout,
            "the API did not answer in time".to_string(),
            Some("raise --api-timeout, or check the network and --endpoint-url".to_string()),
        ),
        SdkError::ResponseError(_) => (
            AwsFailure::BadAnswer,
            format!(
                "the API sent a response that could not be read ({})",
                chain(&err)
            ),
            Some(UNREADABLE_HINT.to_string()),
        ),
        _ => match credentials_error(&err) {
            Some(cred) => (
                AwsFailure::NoCredentials,
                format!("no usable AWS credentials: {}", chain(cred)),
                Some(missing_profile_hint(request).unwrap_or_else(|| sign_in_hint(request))),
            ),
            None => (
                AwsFailure::NotSent,
                format!("the request could not be sent: {}", chain(&err)),
                None,
            ),
        },
    };
    aws(api, request, kind, reason, hint)
}

/// An [`Error::Aws`] of `kind` for a call of `api` for `request`.
pub(crate) fn aws(
    api: &'static str,
    request: &Request,
    kind: AwsFailure,
    reason: String,
    hint: Option<String>,
) -> Error {
    Error::Aws {
        api,
        target: target(request),
        kind,
        reason,
        hint,
    }
}

/// Describes the request for messages: cluster, user and region.
pub(crate) fn target(request: &Request) -> String {
    match &request.aws.region {
        Some(region) => format!("{} in {region}", request.describe()),
        None => request.describe(),
    }
}

/// The IAM permission an API call for `request` needs, and on what, for
/// the access-denied hint.
pub(crate) fn permission(api: &str, request: &Request) -> &'static str {
    match api {
        redshift_creds_core::token::IDC_API if request.workgroup.is_some() => {
            "redshift-serverless:GetIdentityCenterAuthToken on the workgroup, with identity-enhanced \
             credentials (an IAM Identity Center identity)"
        }
        redshift_creds_core::token::IDC_API => {
            "redshift:GetIdentityCenterAuthToken on the cluster, with identity-enhanced credentials \
             (an IAM Identity Center identity)"
        }
        "GetClusterCredentialsWithIAM" => {
            "redshift:GetClusterCredentialsWithIAM on the dbname resource"
        }
        "GetCredentials" => "redshift-serverless:GetCredentials on the workgroup",
        "GetWorkgroup" => "redshift-serverless:GetWorkgroup on the workgroup",
        "DescribeClusters" => "redshift:DescribeClusters on the cluster",
        _ => "redshift:GetClusterCredentials on the dbuser (and dbname, dbgroup) resources",
    }
}

/// The kind of an error code, and wording for the codes users actually
/// meet, for a call of `api`.
pub(crate) fn classify_code(
    api: &str,
    code: &str,
    message: Option<&str>,
    request: &Request,
) -> (AwsFailure, String, Option<String>) {
    let said = message.map(|m| format!(" ({m})")).unwrap_or_default();
    match code {
        "ClusterNotFound" | "ClusterNotFoundFault" => (
            AwsFailure::NotFound,
            format!("the cluster was not found{said}"),
            Some("check --cluster-identifier and --region".to_string()),
        ),
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => (
            AwsFailure::Throttled,
            format!("AWS is throttling requests{said}"),
            Some("retry in a moment; a longer --duration-seconds means fewer calls".to_string()),
        ),
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "AuthFailure"
        | "InvalidAccessKeyId" => (
            AwsFailure::CredentialsRejected,
            format!("AWS rejected the credentials: {code}{said}"),
            Some(sign_in_hint(request)),
        ),
        // A cluster or workgroup without the Identity Center integration.
        "UnsupportedOperation" | "UnsupportedOperationFault" if api == redshift_creds_core::token::IDC_API => (
            AwsFailure::AccessDenied,
            format!(
                "{} does not offer Identity Center tokens: {code}{said}",
                place(request)
            ),
            Some(
                "enable its IAM Identity Center integration (a Redshift IdC application), or drop \
                 --identity-center and use a password"
                    .to_string(),
            ),
        ),
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnsupportedOperation" => (
            AwsFailure::AccessDenied,
            format!("access denied{said}"),
            Some(format!(
                "the IAM principal needs {}",
                permission(api, request)
            )),
        ),
        "InvalidClusterState" | "InvalidClusterStateFault" => (
            AwsFailure::Unavailable,
            format!("the cluster is not available{said}"),
            Some("wait until the cluster is available".to_string()),
        ),
        // Serverless names a missing workgroup so; the wording stays AWS's.
        "ResourceNotFoundException" => (AwsFailure::NotFound, format!("{code}{said}"), None),
        _ => (AwsFailure::Other, format!("{code}{said}"), None),
    }
}

/// The cluster or workgroup, for messages.
fn place(request: &Request) -> String {
    match (&request.workgroup, &request.cluster_identifier) {
        (Some(w), _) => format!("the workgroup \"{w}\""),
        (None, Some(c)) => format!("the cluster \"{c}\""),
        (None, None) => "the cluster".to_string(),
    }
}

/// What to run to get fresh AWS credentials.
fn sign_in_hint(request: &Request) -> String {
    let profile = &request.aws.effective_profile;
    if profile == "default" {
        "sign in again (for example `aws sso login`) or refresh the AWS_* credentials in the environment"
            .to_string()
    } else {
        format!("sign in again: aws sso login --profile {profile}")
    }
}

/// When no credentials came and the profile named (not `default`) is in
/// neither AWS file, says so: signing in to it cannot help.
fn missing_profile_hint(request: &Request) -> Option<String> {
    let profile = &request.aws.effective_profile;
    let files = aws_files();
    if profile == "default" || files.is_empty() || profile_defined(&files, profile) {
        return None;
    }
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    Some(format!(
        "the AWS profile \"{profile}\" is not defined in {}: set one up (aws configure sso --profile {profile}) or name another with --profile, AWS_PROFILE or the connection's aws_profile",
        names.join(" or ")
    ))
}

/// The AWS config and credentials files, as the SDK finds them, with
/// whether each is the config file (whose sections read `[profile NAME]`).
fn aws_files() -> Vec<(std::path::PathBuf, bool)> {
    let home = dirs::home_dir();
    let pick = |var: &str, default: &str| {
        redshift_creds_core::env::Env::var_os(&redshift_creds_core::env::ProcessEnv, var)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    [
        (pick("AWS_CONFIG_FILE", "config"), true),
        (pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false),
    ]
    .into_iter()
    .filter_map(|(p, config)| p.map(|p| (p, config)))
    .collect()
}

/// Whether any of `files` has a section for `profile`. Unreadable files
/// count as not having it.
fn profile_defined(files: &[(std::path::PathBuf, bool)], profile: &str) -> bool {
    files.iter().any(|(path, config)| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().any(|line| {
            let Some(section) = line
                .trim()
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
            else {
                return false;
            };
            let section = section.trim();
            let named = if *config && profile != "default" {
                section.strip_prefix("profile").map(str::trim)
            } else {
                Some(section)
            };
            named == Some(profile)
        })
    })
}

fn credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        cur = e.source();
    }
    None
}

/// The error and its sources, as one line.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use redshift_creds_core::testing::request_with;

    #[test]
    fn cluster_not_found_says_what_to_check() {
        let r = request_with(&["--region", "us-east-1"], &[]);
        let (kind, reason, hint) = classify_code(
            "GetClusterCredentials",
            "ClusterNotFound",
            Some("Cluster x not found."),
            &r,
        );
        assert_eq!(kind, AwsFailure::NotFound);
        assert_eq!(reason, "the cluster was not found (Cluster x not found.)");
        assert_eq!(hint.unwrap(), "check --cluster-identifier and --region");
        assert_eq!(
            target(&r),
            "cluster \"examplecluster\", user \"temp_creds_user\" in us-east-1"
        );
    }

    #[test]
    fn expired_credentials_name_the_sign_in_command() {
        let r = request_with(&["--profile", "dev"], &[]);
        let (kind, reason, hint) = classify_code("GetClusterCredentials", "ExpiredToken", None, &r);
        assert_eq!(kind, AwsFailure::CredentialsRejected);
        assert_eq!(reason, "AWS rejected the credentials: ExpiredToken");
        assert_eq!(hint.unwrap(), "sign in again: aws sso login --profile dev");
    }

    #[test]
    fn a_profile_is_found_in_the_config_or_the_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let creds = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[default]\nregion = x\n[profile dev]\nregion = y\n",
        )
        .unwrap();
        std::fs::write(&creds, "[ci]\naws_access_key_id = k\n").unwrap();
        let files = [(config, true), (creds, false)];
        for found in ["default", "dev", "ci"] {
            assert!(profile_defined(&files, found), "{found}");
        }
        for missing in ["prod", "profile", "region"] {
            assert!(!profile_defined(&files, missing), "{missing}");
        }
    }

    #[test]
    fn throttling_is_named() {
        let r = request_with(&[], &[]);
        let (kind, reason, _) = classify_code(
            "GetClusterCredentials",
            "Throttling",
            Some("Rate exceeded"),
            &r,
        );
        assert_eq!(kind, AwsFailure::Throttled);
        assert_eq!(reason, "AWS is throttling requests (Rate exceeded)");
    }

    #[test]
    fn access_denied_names_the_permission_of_the_api_called() {
        let r = request_with(&[], &[]);
        let hint = |api| classify_code(api, "AccessDenied", None, &r).2.unwrap();
        assert_eq!(
            hint("GetClusterCredentials"),
            "the IAM principal needs redshift:GetClusterCredentials on the dbuser (and dbname, dbgroup) resources"
        );
        assert_eq!(
            hint("GetClusterCredentialsWithIAM"),
            "the IAM principal needs redshift:GetClusterCredentialsWithIAM on the dbname resource"
        );
        assert_eq!(
            hint("GetCredentials"),
            "the IAM principal needs redshift-serverless:GetCredentials on the workgroup"
        );
        assert!(!hint("GetCredentials").contains("redshift:GetClusterCredentials"));
    }

    #[test]
    fn each_code_family_has_its_kind() {
        let r = request_with(&[], &[]);
        let kind = |code| classify_code("GetClusterCredentials", code, Some("x"), &r).0;
        for (code, want) in [
            ("ClusterNotFoundFault", AwsFailure::NotFound),
            ("ResourceNotFoundException", AwsFailure::NotFound),
            ("TooManyRequestsException", AwsFailure::Throttled),
            ("InvalidSignatureException", AwsFailure::CredentialsRejected),
            ("AccessDeniedException", AwsFailure::AccessDenied),
            ("UnsupportedOperation", AwsFailure::AccessDenied),
            ("InvalidClusterStateFault", AwsFailure::Unavailable),
            ("InternalFailure", AwsFailure::Other),
        ] {
            assert_eq!(kind(code), want, "{code}");
        }
    }
}
