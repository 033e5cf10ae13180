//! What the Identity Center sign-in caches: the client registration and the tokens, as cache entries whose secrets go only where passwords go.

use crate::cache::entry::{MAX_ENCODED_LEN, Rejected, Stored};
use crate::cache::key::CacheKey;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The stored format's version; anything else is a miss.
const FORMAT: u32 = 1;

/// The longest a client registration lives (AWS issues 90 days).
const REGISTRATION_LIFETIME: i64 = 366 * 86_400;

/// The longest an Identity Center access token lives, clock slack included.
const TOKEN_LIFETIME: i64 = 12 * 3600 + 60;

/// A registered public client: what RegisterClient returned, kept until
/// `clientSecretExpiresAt`.
#[derive(Clone)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: SecretString,
    pub expiration: i64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The tokens of one browser sign-in: the access token and, when CreateToken
/// returned one, the refresh token that renews it without a browser.
#[derive(Clone)]
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expiration: i64,
}

impl Tokens {
    /// The access token as the token the outputs print.
    pub fn into_access_token(self) -> crate::token::IdcToken {
        crate::token::IdcToken {
            token: self.access_token,
            token_type: crate::token::TokenType::AccessToken,
            expiration: self.expiration,
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("refreshable", &self.refresh_token.is_some())
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationRecord {
    format: u32,
    key: String,
    kind: String,
    client_id: String,
    client_secret: Zeroizing<String>,
    expiration: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensRecord {
    format: u32,
    key: String,
    kind: String,
    access_token: Zeroizing<String>,
    refresh_token: Option<Zeroizing<String>>,
    expiration: i64,
}

/// A token or id as the API may send it: printable ASCII, no spaces, bounded.
pub fn check_opaque(value: &str, max: usize) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > max {
        return Err("is empty or too long");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("holds characters other than printable ASCII");
    }
    Ok(())
}

fn read<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Rejected> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(Rejected::TooLarge(bytes.len()));
    }
    serde_json::from_slice(bytes).map_err(|_| Rejected::Garbage)
}

fn check_header(
    format: u32,
    key: &str,
    kind: &str,
    want: &CacheKey,
    noun: &str,
) -> Result<(), Rejected> {
    if format != FORMAT {
        return Err(Rejected::OtherFormat(format));
    }
    if key != want.as_str() || kind != noun {
        return Err(Rejected::OtherKey);
    }
    Ok(())
}

impl Stored for Registration {
    const MAX_LIFETIME: i64 = REGISTRATION_LIFETIME;
    const NOUN: &'static str = "Identity Center client registration";
    fn shown_as(&self) -> String {
        self.client_id.chars().take(24).collect()
    }
    fn expiration(&self) -> i64 {
        self.expiration
    }
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>> {
        let r = RegistrationRecord {
            format: FORMAT,
            key: key.as_str().to_string(),
            kind: Self::NOUN.to_string(),
            client_id: self.client_id.clone(),
            client_secret: Zeroizing::new(self.client_secret.expose_secret().to_string()),
            expiration: self.expiration,
        };
        Zeroizing::new(serde_json::to_vec(&r).expect("an entry always serializes"))
    }
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected> {
        let r: RegistrationRecord = read(bytes)?;
        check_header(r.format, &r.key, &r.kind, key, Self::NOUN)?;
        check_opaque(&r.client_id, 1024).map_err(|_| Rejected::BadField("client_id"))?;
        check_opaque(&r.client_secret, 4096).map_err(|_| Rejected::BadField("client_secret"))?;
        Ok(Registration {
            client_id: r.client_id,
            client_secret: SecretString::from(r.client_secret.as_str()),
            expiration: r.expiration,
        })
    }
}

impl Stored for Tokens {
    const MAX_LIFETIME: i64 = TOKEN_LIFETIME;
    const NOUN: &'static str = "Identity Center token";
    fn shown_as(&self) -> String {
        if self.refresh_token.is_some() {
            "access token (refreshable)".to_string()
        } else {
            "access token".to_string()
        }
    }
    fn expiration(&self) -> i64 {
        self.expiration
    }
    fn encode(&self, key: &CacheKey) -> Zeroizing<Vec<u8>> {
        let r = TokensRecord {
            format: FORMAT,
            key: key.as_str().to_string(),
            kind: Self::NOUN.to_string(),
            access_token: Zeroizing::new(self.access_token.expose_secret().to_string()),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| Zeroizing::new(t.expose_secret().to_string())),
            expiration: self.expiration,
        };
        Zeroizing::new(serde_json::to_vec(&r).expect("an entry always serializes"))
    }
    fn decode(bytes: &[u8], key: &CacheKey) -> Result<Self, Rejected> {
        let r: TokensRecord = read(bytes)?;
        check_header(r.format, &r.key, &r.kind, key, Self::NOUN)?;
        crate::token::check_token(&r.access_token)
            .map_err(|_| Rejected::BadField("access_token"))?;
        if let Some(t) = &r.refresh_token {
            check_opaque(t, 6144).map_err(|_| Rejected::BadField("refresh_token"))?;
        }
        Ok(Tokens {
            access_token: SecretString::from(r.access_token.as_str()),
            refresh_token: r.refresh_token.map(|t| SecretString::from(t.as_str())),
            expiration: r.expiration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::parse(&"a".repeat(40)).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_refuse_another_key_or_kind() {
        let t = Tokens {
            access_token: SecretString::from("at"),
            refresh_token: Some(SecretString::from("rt")),
            expiration: 42,
        };
        let bytes = t.encode(&key());
        let back = Tokens::decode(&bytes, &key()).unwrap();
        assert_eq!(back.access_token.expose_secret(), "at");
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "rt");
        let other = CacheKey::parse(&"b".repeat(40)).unwrap();
        assert!(Tokens::decode(&bytes, &other).is_err());
        assert!(
            Registration::decode(&bytes, &key()).is_err(),
            "a token is no registration"
        );
    }

    #[test]
    fn a_token_lives_as_long_as_the_core_allows_an_access_token() {
        use crate::token::TokenType;
        assert_eq!(Tokens::MAX_LIFETIME, TokenType::AccessToken.max_lifetime());
    }

    #[test]
    fn debug_shows_no_secret() {
        let r = Registration {
            client_id: "id".into(),
            client_secret: SecretString::from("s3cret"),
            expiration: 1,
        };
        let t = Tokens {
            access_token: SecretString::from("acc3ss"),
            refresh_token: Some(SecretString::from("r3fresh")),
            expiration: 1,
        };
        let shown = format!("{r:?} {t:?}");
        for secret in ["s3cret", "acc3ss", "r3fresh"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
