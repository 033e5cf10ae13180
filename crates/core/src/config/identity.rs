//! Who the AWS SDK would sign as and where it would call, as far as the environment and two file stats tell: the part of the cache key outside the request.

use crate::env::Env;
use sha2::{Digest, Sha256};

/// The variables, besides the profile, region and `AWS_ACCESS_KEY_ID`, with
/// which the AWS SDK chooses whose identity to sign with or which endpoint to
/// call. Each that is set enters the key as it is.
pub const IDENTITY_VARIABLES: [&str; 17] = [
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_REDSHIFT",
    "AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_STS_REGIONAL_ENDPOINTS",
];

/// Variables that are secrets: they enter the key as a SHA-256, never as they are.
const SECRET_IDENTITY_VARIABLES: [&str; 1] = ["AWS_CONTAINER_AUTHORIZATION_TOKEN"];

/// Everything outside the request with which the SDK picks the identity or
/// the endpoint, as (name, value) pairs for the cache key: the
/// [`IDENTITY_VARIABLES`] that are set, the secret ones hashed, and the
/// AWS config and credentials files: their paths (`AWS_CONFIG_FILE`,
/// `AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/config` and
/// `~/.aws/credentials`) and the device, inode, size and modification time
/// of each, from one `stat` each. Reads no file's contents, so a cache hit
/// still loads no AWS configuration.
pub fn identity(env: &dyn Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in IDENTITY_VARIABLES {
        if let Some(v) = env.var(name).filter(|v| !v.is_empty()) {
            out.push((name.to_string(), v));
        }
    }
    for name in SECRET_IDENTITY_VARIABLES {
        if let Some(v) = env.var(name).filter(|v| !v.is_empty()) {
            out.push((name.to_string(), hex::encode(Sha256::digest(v.as_bytes()))));
        }
    }
    let home = env.var("HOME").unwrap_or_default();
    for (name, default) in [
        ("AWS_CONFIG_FILE", ".aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
    ] {
        let path = env
            .var(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{home}/{default}"));
        let stamp = file_stamp(std::path::Path::new(&path));
        out.push((name.to_string(), path));
        out.push((format!("{name} stat"), stamp));
    }
    out
}

/// A cheap identity of a file's contents: device, inode, size and
/// modification time, or `missing`.
fn file_stamp(path: &std::path::Path) -> String {
    let Ok(m) = std::fs::metadata(path) else {
        return "missing".to_string();
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{}:{}:{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        )
    }
    #[cfg(not(unix))]
    {
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}:{modified}", m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapEnv;

    #[test]
    fn a_secret_identity_value_is_keyed_by_its_pinned_sha256() {
        let env = MapEnv(
            [(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
                "s3cr3t".to_string(),
            )]
            .into(),
        );
        // python3 -c 'import hashlib;print(hashlib.sha256(b"s3cr3t").hexdigest())'
        let want = "4e738ca5563c06cfd0018299933d58db1dd8bf97f6973dc99bf6cdc64b5550bd";
        assert!(
            identity(&env).contains(&("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), want.into())),
            "{:?}",
            identity(&env)
        );
    }
}
