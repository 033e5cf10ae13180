//! The cache key: a hash of everything that changes the answer, and nothing secret.

use crate::config::Request;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// The keyring service name every entry is filed under (the user is the
/// cache key): Secret Service's `service` attribute, keyutils' description
/// suffix, the Keychain and Credential Manager service.
pub const SERVICE: &str = "redshift-creds";

/// Names one cached credential. It is a hex SHA-256 prefix, safe to use in a
/// file name, a lock file name and a keyring entry name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

/// What goes into the hash, in a fixed order. Bump `scheme` when the meaning
/// of any field changes, so old entries are never read with a new meaning.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    scheme: u32,
    api: &'a str,
    #[serde(flatten)]
    target: Target<'a>,
    custom_domain_name: Option<&'a str>,
    db_user: Option<&'a str>,
    db_name: Option<&'a str>,
    db_groups: &'a [String],
    auto_create: bool,
    duration_seconds: i64,
    #[serde(flatten)]
    caller: Caller<'a>,
}

/// The cluster or workgroup a key is for, in the material's order.
#[derive(Serialize)]
struct Target<'a> {
    cluster_identifier: Option<&'a str>,
    workgroup: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn of(request: &'a Request) -> Target<'a> {
        Target {
            cluster_identifier: request.cluster_identifier.as_deref(),
            workgroup: request.workgroup.as_deref(),
        }
    }
}

/// Who asks and where: the last fields of every key's material (never a secret).
#[derive(Serialize)]
struct Caller<'a> {
    region: Option<&'a str>,
    endpoint_url: Option<&'a str>,
    profile: &'a str,
    access_key_id: Option<&'a str>,
    identity: &'a [(String, String)],
}

impl<'a> Caller<'a> {
    fn of(request: &'a Request) -> Caller<'a> {
        Caller {
            region: request.aws.region.as_deref(),
            endpoint_url: request.aws.endpoint_url.as_deref(),
            profile: &request.aws.effective_profile,
            access_key_id: request.aws.access_key_id.as_deref(),
            identity: &request.aws.identity,
        }
    }
}

impl CacheKey {
    /// Derives the key of a request. The request's groups are already sorted,
    /// checked to be lowercase, and deduplicated, so their order and repeats do not matter.
    /// The access key id is public (it appears in every signed request); the
    /// secret key never enters.
    pub fn of(request: &Request) -> CacheKey {
        let material = KeyMaterial {
            scheme: 1,
            api: request.api.name(),
            target: Target::of(request),
            custom_domain_name: request.custom_domain_name.as_deref(),
            db_user: request.db_user.as_deref(),
            db_name: request.db_name.as_deref(),
            db_groups: &request.db_groups,
            auto_create: request.auto_create,
            duration_seconds: request.duration_seconds,
            caller: Caller::of(request),
        };
        hash(&material)
    }

    /// The key of a cluster's endpoint: the same cluster, seen through the
    /// same account, region and endpoint, has the same address.
    pub fn endpoint_of(request: &Request) -> CacheKey {
        #[derive(Serialize)]
        struct Api<'a> {
            api: &'a str,
        }
        let api = if request.workgroup.is_some() {
            "GetWorkgroup"
        } else {
            "DescribeClusters"
        };
        scoped(request, Api { api })
    }

    /// The key of an Identity Center token for the request: the kind and the
    /// token type enter, so it never equals a password's key for the same
    /// request; the database user, groups and duration do not (a token
    /// names the caller's own identity, for the cluster or workgroup).
    pub fn token_of(request: &Request, token_type: crate::token::TokenType) -> CacheKey {
        #[derive(Serialize)]
        struct Token<'a> {
            kind: &'a str,
            token_type: &'a str,
        }
        let token_type = token_type.as_str();
        scoped(
            request,
            Token {
                kind: "idc-token",
                token_type,
            },
        )
    }

    /// The key as 40 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl CacheKey {
    /// Accepts a stored key string only if it has the shape of a key.
    pub fn parse(s: &str) -> Option<CacheKey> {
        let ok = s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| CacheKey(s.to_string()))
    }
}

/// The key of `what` for the request's cluster or workgroup and caller, nothing more
/// (no user, groups or duration): scheme 1, then `what`'s fields, [`Target`], [`Caller`].
fn scoped(request: &Request, what: impl Serialize) -> CacheKey {
    #[derive(Serialize)]
    struct Scoped<'a, W> {
        scheme: u32,
        #[serde(flatten)]
        what: W,
        #[serde(flatten)]
        target: Target<'a>,
        #[serde(flatten)]
        caller: Caller<'a>,
    }
    hash(&Scoped {
        scheme: 1,
        what,
        target: Target::of(request),
        caller: Caller::of(request),
    })
}

/// The first 160 bits of the SHA-256 of the material's JSON, in hex.
fn hash(material: &impl Serialize) -> CacheKey {
    let json = serde_json::to_vec(material).expect("key material always serializes");
    let digest = Sha256::digest(&json);
    CacheKey(hex::encode(&digest[..20]))
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::identity::IDENTITY_VARIABLES;
    use crate::testing::request_with;

    #[test]
    fn a_token_key_differs_from_the_passwords_and_by_type() {
        use crate::token::TokenType;
        let r = request_with(&["--cluster-identifier", "c1"], &[]);
        let subject = CacheKey::token_of(&r, TokenType::SubjectToken);
        assert_ne!(subject, CacheKey::of(&r));
        assert_ne!(subject, CacheKey::endpoint_of(&r));
        assert_ne!(subject, CacheKey::token_of(&r, TokenType::AccessToken));
        let other = request_with(&["--cluster-identifier", "c2"], &[]);
        assert_ne!(subject, CacheKey::token_of(&other, TokenType::SubjectToken));
        assert_eq!(subject, CacheKey::token_of(&r, TokenType::SubjectToken));
    }

    #[test]
    fn the_keys_are_the_ones_earlier_versions_wrote() {
        // Pinned: a change to the material's JSON would orphan every cached entry.
        use crate::token::TokenType;
        let r = request_with(&["--cluster-identifier", "c1", "--db-user", "alice"], &[]);
        let w = request_with(&["--workgroup", "analytics"], &[]);
        let keys = [
            CacheKey::of(&r),
            CacheKey::of(&w),
            CacheKey::endpoint_of(&r),
            CacheKey::endpoint_of(&w),
            CacheKey::token_of(&r, TokenType::SubjectToken),
            CacheKey::token_of(&w, TokenType::AccessToken),
        ];
        let keys: Vec<&str> = keys.iter().map(CacheKey::as_str).collect();
        assert_eq!(
            keys,
            [
                "2621173a1d07e7b78854096f69396f8b964eb565",
                "734115c2d8a66c6bcf3a1541615a65065ab253d7",
                "21b4fcb3f1c21c3f4cb2c9acecfbceb3b134e266",
                "702e6790dc1f2156e66da0afe0722f97c8eba840",
                "3b20d6c3bec39d44cb7353a90b12e0a6ec9d87b6",
                "5bcb980061a0fdacd8179d686727cfee7a23e1b7",
            ]
        );
    }

    #[test]
    fn the_key_is_40_hex_digits_and_stable() {
        let k = CacheKey::of(&request_with(&["--db-user", "alice"], &[]));
        assert_eq!(k.as_str().len(), 40);
        assert!(
            k.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(k, CacheKey::of(&request_with(&["--db-user", "alice"], &[])));
    }

    #[test]
    fn group_order_case_and_repeats_do_not_change_the_key() {
        let a = CacheKey::of(&request_with(&["--db-groups", "b", "a", "a"], &[]));
        let b = CacheKey::of(&request_with(&["--db-groups", "a,b"], &[]));
        assert_eq!(a, b);
    }

    #[test]
    fn everything_that_changes_the_answer_changes_the_key() {
        let base = CacheKey::of(&request_with(&[], &[]));
        type Variant<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
        let variants: Vec<Variant> = vec![
            (vec!["--cluster-identifier", "other"], vec![]),
            (vec!["--db-user", "bob"], vec![]),
            (vec!["--with-iam"], vec![]),
            (vec!["--workgroup", "examplecluster"], vec![]),
            (vec!["--custom-domain-name", "db.example.com"], vec![]),
            (vec!["--db-name", "dev"], vec![]),
            (vec!["--db-groups", "g"], vec![]),
            (vec!["--auto-create"], vec![]),
            (vec!["--duration-seconds", "3600"], vec![]),
            (vec!["--region", "eu-west-1"], vec![]),
            (vec!["--endpoint-url", "http://127.0.0.1:1"], vec![]),
            (vec!["--profile", "prod"], vec![]),
            (vec![], vec![("AWS_PROFILE", "prod")]),
            (vec![], vec![("AWS_REGION", "eu-west-1")]),
            (vec![], vec![("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]),
            (vec![], vec![("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]),
            (vec![], vec![("AWS_CONFIG_FILE", "/elsewhere/config")]),
            (
                vec![],
                vec![("AWS_SHARED_CREDENTIALS_FILE", "/elsewhere/creds")],
            ),
            (vec![], vec![("HOME", "/another/home")]),
            (vec![], vec![("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok")]),
        ];
        for (flags, env) in variants {
            let k = CacheKey::of(&request_with(&flags, &env));
            assert_ne!(k, base, "{flags:?} {env:?} did not change the key");
        }
    }

    #[test]
    fn every_identity_variable_changes_both_keys() {
        let base = request_with(&[], &[]);
        for name in IDENTITY_VARIABLES {
            let r = request_with(&[], &[(name, "http://127.0.0.1:9")]);
            assert_ne!(CacheKey::of(&r), CacheKey::of(&base), "{name}");
            assert_ne!(
                CacheKey::endpoint_of(&r),
                CacheKey::endpoint_of(&base),
                "{name}"
            );
        }
    }

    #[test]
    fn a_token_enters_hashed_and_file_contents_by_stat() {
        let r = request_with(
            &[],
            &[("AWS_CONTAINER_AUTHORIZATION_TOKEN", "s3cr3t-token")],
        );
        let shown = format!("{:?}", r.aws.identity);
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let path = creds.to_str().unwrap();
        let key = || CacheKey::of(&request_with(&[], &[("AWS_SHARED_CREDENTIALS_FILE", path)]));
        let missing = key();
        std::fs::write(&creds, "[default]\n").unwrap();
        let one = key();
        assert_ne!(one, missing);
        assert_eq!(key(), one, "stable while the file is unchanged");
        std::fs::write(&creds, "[default]\naws_access_key_id = B\n").unwrap();
        assert_ne!(key(), one, "a rewritten file is another identity");
    }

    #[test]
    fn the_endpoint_key_differs_from_the_credential_key_and_ignores_the_user() {
        let a = request_with(&["--db-user", "alice"], &[]);
        let b = request_with(&["--db-user", "bob"], &[]);
        assert_ne!(CacheKey::endpoint_of(&a), CacheKey::of(&a));
        assert_eq!(CacheKey::endpoint_of(&a), CacheKey::endpoint_of(&b));
        let other = request_with(&["--cluster-identifier", "other"], &[]);
        assert_ne!(CacheKey::endpoint_of(&a), CacheKey::endpoint_of(&other));
    }

    #[test]
    fn the_secret_key_and_unrelated_settings_do_not_enter_the_key() {
        let base = CacheKey::of(&request_with(&[], &[]));
        let with_secret = CacheKey::of(&request_with(&[], &[("AWS_SECRET_ACCESS_KEY", "s3cr3t")]));
        assert_eq!(base, with_secret);
        let with_margin = CacheKey::of(&request_with(&["--refresh-margin", "10"], &[]));
        assert_eq!(base, with_margin);
    }
}
