//! The stored forms of cached credentials, Identity Center tokens and endpoints, their decoders, and when they count as fresh.

use super::key::CacheKey;
use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::token::{IdcToken, TokenType};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The stored format's version. Anything else is an older or newer format: a miss.
const FORMAT: u32 = 1;

/// The longest a stored entry may be. Anything bigger is not ours: a miss.
/// Room for an Identity Center token of [`crate::token::MAX_TOKEN_LEN`].
pub const MAX_ENCODED_LEN: usize = 16 * 1024;

/// The longest lifetime the API issues, in seconds. An entry that claims to
/// live longer than this (plus a little clock slack) was tampered with, or the
/// clock jumped: a miss.
pub const MAX_LIFETIME: i64 = 3600 + 60;

/// How long a discovered endpoint is kept: endpoints change only when a
/// cluster is renamed or moved.
pub const ENDPOINT_LIFETIME: i64 = 24 * 3600;

/// Something the cache can hold: it expires, and it has a stored form tagged
/// with its key.
pub trait Stored: Sized + Clone {
    /// An entry that claims to live longer than this is a miss.
    const MAX_LIFETIME: i64;
    /// What it is, for messages ("password").
    const NOUN: &'static str;
    /// What `list` shows in its user column: the database user, or the address.
    fn shown_as(&self) -> String;
    /// When it stops being valid, in seconds since the Unix epoch.
    fn expiration(&self) -> i64;
    /// The longest this entry may live: [`Stored::MAX_LIFETIME`] unless its
    /// kind lives shorter (a `SUBJECT_TOKEN` lives shorter than an access token).
    fn max_lifetime(&self) -> i64 {
        Self::MAX_LIFETIME
    }
    /// The stored form, zeroized on drop.
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>>;
    /// Reads a stored form, accepting it only if it belongs to `key`.
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected>;
}

impl Stored for Credential {
    const MAX_LIFETIME: i64 = MAX_LIFETIME;
    const NOUN: &'static str = "password";
    fn shown_as(&self) -> String {
        self.db_user.clone()
    }
    fn expiration(&self) -> i64 {
        self.expiration
    }
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>> {
        encode(key, self)
    }
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected> {
        decode(bytes, key)
    }
}

/// A discovered endpoint with the time it should be looked up again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedEndpoint {
    /// Host and port.
    pub endpoint: Endpoint,
    /// When to look again, in seconds since the Unix epoch.
    pub expiration: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointRecord {
    format: u32,
    key: String,
    host: String,
    port: u16,
    expiration: i64,
}

impl Stored for CachedEndpoint {
    const MAX_LIFETIME: i64 = ENDPOINT_LIFETIME + 60;
    const NOUN: &'static str = "endpoint";
    fn shown_as(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }
    fn expiration(&self) -> i64 {
        self.expiration
    }
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>> {
        let record = EndpointRecord {
            format: FORMAT,
            key: key.as_str().to_string(),
            host: self.endpoint.host.clone(),
            port: self.endpoint.port,
            expiration: self.expiration,
        };
        Zeroizing::new(serde_json::to_vec(&record).expect("an entry always serializes"))
    }
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(Rejected::TooLarge(bytes.len()));
        }
        let r: EndpointRecord = serde_json::from_slice(bytes).map_err(|_| Rejected::Garbage)?;
        if r.format != FORMAT {
            return Err(Rejected::OtherFormat(r.format));
        }
        if r.key != key.as_str() {
            return Err(Rejected::OtherKey);
        }
        if crate::rules::host("host", &r.host).is_err() || r.port == 0 {
            return Err(Rejected::BadField("host"));
        }
        Ok(CachedEndpoint {
            endpoint: Endpoint {
                host: r.host,
                port: r.port,
            },
            expiration: r.expiration,
        })
    }
}

/// The stored form of a token. `kind` keeps it from ever reading as another entry.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    format: u32,
    kind: String,
    key: String,
    token: Zeroizing<String>,
    token_type: String,
    expiration: i64,
}

const TOKEN_KIND: &str = "idc-token";

impl Stored for IdcToken {
    const MAX_LIFETIME: i64 = 12 * 3600 + 60;
    const NOUN: &'static str = "token";
    fn shown_as(&self) -> String {
        self.token_type.as_str().to_string()
    }
    fn expiration(&self) -> i64 {
        self.expiration
    }
    fn max_lifetime(&self) -> i64 {
        self.token_type.max_lifetime()
    }
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>> {
        let record = TokenRecord {
            format: FORMAT,
            kind: TOKEN_KIND.to_string(),
            key: key.as_str().to_string(),
            token: Zeroizing::new(self.expose_token().to_string()),
            token_type: self.token_type.as_str().to_string(),
            expiration: self.expiration,
        };
        Zeroizing::new(serde_json::to_vec(&record).expect("an entry always serializes"))
    }
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(Rejected::TooLarge(bytes.len()));
        }
        let r: TokenRecord = serde_json::from_slice(bytes).map_err(|_| Rejected::Garbage)?;
        if r.format != FORMAT {
            return Err(Rejected::OtherFormat(r.format));
        }
        if r.kind != TOKEN_KIND {
            return Err(Rejected::Garbage);
        }
        if r.key != key.as_str() {
            return Err(Rejected::OtherKey);
        }
        let token_type = TokenType::parse(&r.token_type).ok_or(Rejected::BadField("token_type"))?;
        if crate::token::check_token(&r.token).is_err() {
            return Err(Rejected::BadField("token"));
        }
        if r.expiration <= 0 {
            return Err(Rejected::BadField("expiration"));
        }
        Ok(IdcToken {
            token: SecretString::from(r.token.as_str()),
            token_type,
            expiration: r.expiration,
        })
    }
}

#[derive(Serialize)]
struct Outgoing<'a> {
    format: u32,
    key: &'a str,
    db_user: &'a str,
    password: &'a str,
    expiration: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    format: u32,
    key: String,
    db_user: String,
    password: Zeroizing<String>,
    expiration: i64,
}

/// Serializes a credential for the store, tagged with its key. The buffer is
/// zeroized when dropped.
pub fn encode(key: &CacheKey, credential: &Credential) -> Zeroizing<Vec<u8>> {
    let out = Outgoing {
        format: FORMAT,
        key: key.as_str(),
        db_user: &credential.db_user,
        password: credential.expose_password(),
        expiration: credential.expiration,
    };
    Zeroizing::new(serde_json::to_vec(&out).expect("an entry always serializes"))
}

/// Why a stored entry was not used. Never holds the entry's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Bigger than [`MAX_ENCODED_LEN`].
    TooLarge(usize),
    /// Not JSON of our shape.
    Garbage,
    /// Another format version.
    OtherFormat(u32),
    /// Stored under one key, but claims another.
    OtherKey,
    /// A field is out of range.
    BadField(&'static str),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::TooLarge(n) => write!(f, "entry is {n} bytes, more than {MAX_ENCODED_LEN}"),
            Rejected::Garbage => f.write_str("entry is not a redshift-creds cache entry"),
            Rejected::OtherFormat(v) => write!(f, "entry has format {v}, expected {FORMAT}"),
            Rejected::OtherKey => f.write_str("entry belongs to another cache key"),
            Rejected::BadField(name) => write!(f, "entry field {name} is out of range"),
        }
    }
}

/// Decodes a stored entry, accepting it only if it is of this format and
/// belongs to `key`. Any problem is a [`Rejected`], which callers treat as a miss.
pub fn decode(bytes: &[u8], key: &CacheKey) -> Result<Credential, Rejected> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(Rejected::TooLarge(bytes.len()));
    }
    let incoming: Incoming = serde_json::from_slice(bytes).map_err(|_| Rejected::Garbage)?;
    if incoming.format != FORMAT {
        return Err(Rejected::OtherFormat(incoming.format));
    }
    if incoming.key != key.as_str() {
        return Err(Rejected::OtherKey);
    }
    // The same rules as an API answer, so a planted entry cannot carry
    // what AWS may not send.
    if crate::credential::check_db_user(&incoming.db_user).is_err() {
        return Err(Rejected::BadField("db_user"));
    }
    if crate::credential::check_password(&incoming.password).is_err() {
        return Err(Rejected::BadField("password"));
    }
    if incoming.expiration <= 0 {
        return Err(Rejected::BadField("expiration"));
    }
    Ok(Credential {
        db_user: incoming.db_user,
        password: SecretString::from(incoming.password.as_str()),
        expiration: incoming.expiration,
    })
}

/// How usable a cached entry is at a given moment: the one decision the
/// front's hit, the refresh use case and the proxy's refresh ahead all make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid for longer than the refresh margin: use it, no refresh.
    Fresh,
    /// Still valid, but inside the margin: use it and refresh it ahead (in
    /// the background where there is one), falling back to it if that fails.
    Ahead,
    /// Expired, or implausibly far in the future: a miss, fetched in the foreground.
    Unusable,
}

impl Freshness {
    /// Classifies `entry` at `now` (what the refresh use case's `Clock` reads)
    /// with a refresh margin, both in seconds.
    pub fn of<T: Stored>(entry: &T, now: i64, margin: i64) -> Freshness {
        let left = entry.expiration().saturating_sub(now);
        if left <= 0 || left > entry.max_lifetime().min(T::MAX_LIFETIME) {
            Freshness::Unusable
        } else if left <= margin {
            Freshness::Ahead
        } else {
            Freshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request_with;

    fn key() -> CacheKey {
        CacheKey::of(&request_with(&[], &[]))
    }

    fn cred(expiration: i64) -> Credential {
        Credential {
            db_user: "IAM:alice".into(),
            password: SecretString::from("pw-\"quoted\"\\"),
            expiration,
        }
    }

    #[test]
    fn an_entry_round_trips() {
        let bytes = encode(&key(), &cred(1_800_000_000));
        let back = decode(&bytes, &key()).unwrap();
        assert_eq!(back.db_user, "IAM:alice");
        assert_eq!(back.expose_password(), "pw-\"quoted\"\\");
        assert_eq!(back.expiration, 1_800_000_000);
    }

    #[test]
    fn foreign_entries_are_rejected() {
        let other = CacheKey::of(&request_with(&["--db-user", "bob"], &[]));
        let bytes = encode(&other, &cred(1_800_000_000));
        assert_eq!(decode(&bytes, &key()).unwrap_err(), Rejected::OtherKey);
        assert_eq!(decode(b"", &key()).unwrap_err(), Rejected::Garbage);
        assert_eq!(decode(b"\xff\xfe", &key()).unwrap_err(), Rejected::Garbage);
        assert_eq!(
            decode(b"{\"format\":1}", &key()).unwrap_err(),
            Rejected::Garbage
        );
        let old = format!(
            "{{\"format\":0,\"key\":\"{}\",\"db_user\":\"IAM:a\",\"password\":\"p\",\"expiration\":5}}",
            key()
        );
        assert_eq!(
            decode(old.as_bytes(), &key()).unwrap_err(),
            Rejected::OtherFormat(0)
        );
        let big = vec![b' '; MAX_ENCODED_LEN + 1];
        assert_eq!(
            decode(&big, &key()).unwrap_err(),
            Rejected::TooLarge(MAX_ENCODED_LEN + 1)
        );
        let negative = format!(
            "{{\"format\":1,\"key\":\"{}\",\"db_user\":\"IAM:a\",\"password\":\"p\",\"expiration\":-5}}",
            key()
        );
        assert_eq!(
            decode(negative.as_bytes(), &key()).unwrap_err(),
            Rejected::BadField("expiration")
        );
    }

    #[test]
    fn a_planted_entry_cannot_carry_what_aws_may_not_send() {
        let planted = |user: &str, pw: &str| {
            let c = Credential {
                db_user: user.into(),
                password: SecretString::from(pw),
                expiration: 1_800_000_000,
            };
            decode(&encode(&key(), &c), &key())
        };
        assert!(planted("IAM:a", "p").is_ok());
        assert_eq!(
            planted("IAM:\u{1b}]0;x\u{7}", "p").unwrap_err(),
            Rejected::BadField("db_user")
        );
        assert_eq!(
            planted(&"u".repeat(129), "p").unwrap_err(),
            Rejected::BadField("db_user")
        );
        assert_eq!(
            planted("IAM:a", "p\nq").unwrap_err(),
            Rejected::BadField("password")
        );
        assert_eq!(
            planted("IAM:a", "p q").unwrap_err(),
            Rejected::BadField("password")
        );
    }

    #[test]
    fn rejection_messages_never_carry_the_entry() {
        // Real rejections of entries that hold the password, each way an
        // entry can be refused: what is shown for them must not echo it.
        let good = String::from_utf8(encode(&key(), &cred(1_800_000_000)).to_vec()).unwrap();
        let other = CacheKey::of(&request_with(&["--db-user", "bob"], &[]));
        let mut huge = good.clone();
        huge.push_str(&" ".repeat(MAX_ENCODED_LEN));
        let refused = [
            String::from_utf8(encode(&other, &cred(1_800_000_000)).to_vec()).unwrap(),
            good.replacen("\"format\":1", "\"format\":7", 1),
            good.replacen("1800000000", "-5", 1),
            good[..good.len() - 3].to_string(),
            huge,
        ];
        for bytes in &refused {
            assert!(bytes.contains("pw-"), "the case holds the password");
            let why = decode(bytes.as_bytes(), &key()).unwrap_err();
            let shown = format!("{why:?} {why}");
            assert!(!shown.contains("pw-"), "{shown}");
        }
    }

    #[test]
    fn margin_arithmetic_with_an_injected_clock() {
        let now = 1_000_000;
        let c = cred(now + 900);
        assert_eq!(Freshness::of(&c, now, 300), Freshness::Fresh);
        assert_eq!(Freshness::of(&c, now + 599, 300), Freshness::Fresh);
        assert_eq!(Freshness::of(&c, now + 600, 300), Freshness::Ahead);
        assert_eq!(Freshness::of(&c, now + 899, 300), Freshness::Ahead);
        assert_eq!(Freshness::of(&c, now + 900, 300), Freshness::Unusable);
        assert_eq!(Freshness::of(&c, now + 5000, 300), Freshness::Unusable);
        assert_eq!(Freshness::of(&c, now, 0), Freshness::Fresh);
    }

    #[test]
    fn endpoints_round_trip_and_live_a_day() {
        let e = CachedEndpoint {
            endpoint: Endpoint {
                host: "c.abc.us-east-1.redshift.amazonaws.com".into(),
                port: 5439,
            },
            expiration: 1_000_000 + ENDPOINT_LIFETIME,
        };
        let back = CachedEndpoint::decode(&e.encode(&key()), &key()).unwrap();
        assert_eq!(back, e);
        assert_eq!(Freshness::of(&e, 1_000_000, 0), Freshness::Fresh);
        assert!(
            Credential::decode(&e.encode(&key()), &key()).is_err(),
            "kinds do not mix"
        );
        let bad = CachedEndpoint {
            endpoint: Endpoint {
                host: "a b".into(),
                port: 1,
            },
            ..e
        };
        assert_eq!(
            CachedEndpoint::decode(&bad.encode(&key()), &key()),
            Err(Rejected::BadField("host"))
        );
    }

    fn idc(token_type: TokenType, expiration: i64) -> IdcToken {
        IdcToken {
            token: SecretString::from("tok-secret.AbC/+="),
            token_type,
            expiration,
        }
    }

    #[test]
    fn tokens_round_trip_and_never_read_as_another_kind() {
        let t = idc(TokenType::SubjectToken, 1_800_000_000);
        let bytes = t.encode(&key());
        let back = IdcToken::decode(&bytes, &key()).unwrap();
        assert_eq!(back.expose_token(), "tok-secret.AbC/+=");
        assert_eq!(back.token_type, TokenType::SubjectToken);
        assert_eq!(back.expiration, 1_800_000_000);
        assert!(
            Credential::decode(&bytes, &key()).is_err(),
            "not a password"
        );
        assert!(CachedEndpoint::decode(&bytes, &key()).is_err());
        let pw = cred(1_800_000_000).encode(&key());
        assert!(
            IdcToken::decode(&pw, &key()).is_err(),
            "a password is no token"
        );
        let other = CacheKey::of(&request_with(&["--db-user", "bob"], &[]));
        assert_eq!(
            IdcToken::decode(&bytes, &other).unwrap_err(),
            Rejected::OtherKey
        );
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let planted = |from: &str, to: &str| {
            let why = IdcToken::decode(text.replacen(from, to, 1).as_bytes(), &key()).unwrap_err();
            assert!(!format!("{why:?} {why}").contains("tok-secret"));
            why
        };
        assert_eq!(
            planted("SUBJECT_TOKEN", "BEARER"),
            Rejected::BadField("token_type")
        );
        assert_eq!(
            planted("tok-secret", "tok secret"),
            Rejected::BadField("token")
        );
        assert_eq!(
            planted("1800000000", "-1"),
            Rejected::BadField("expiration")
        );
        assert_eq!(planted("idc-token", "password"), Rejected::Garbage);
    }

    #[test]
    fn a_token_lives_no_longer_than_its_kind() {
        let now = 1_000_000;
        let subject = idc(TokenType::SubjectToken, now + 3660);
        assert_eq!(Freshness::of(&subject, now, 300), Freshness::Fresh);
        let subject = idc(TokenType::SubjectToken, now + 3661);
        assert_eq!(Freshness::of(&subject, now, 300), Freshness::Unusable);
        let access = idc(TokenType::AccessToken, now + 8 * 3600);
        assert_eq!(Freshness::of(&access, now, 300), Freshness::Fresh);
    }

    #[test]
    fn an_expiry_further_ahead_than_the_api_issues_is_unusable() {
        let now = 1_000_000;
        assert_eq!(Freshness::of(&cred(now + 3600), now, 300), Freshness::Fresh);
        assert_eq!(
            Freshness::of(&cred(now + MAX_LIFETIME), now, 300),
            Freshness::Fresh
        );
        assert_eq!(
            Freshness::of(&cred(now + MAX_LIFETIME + 1), now, 300),
            Freshness::Unusable
        );
        assert_eq!(
            Freshness::of(&cred(i64::MAX), now, 300),
            Freshness::Unusable
        );
        assert_eq!(Freshness::of(&cred(1), i64::MAX, 300), Freshness::Unusable);
    }
}
