//! The record of a failed refresh, kept beside its entry as `<key>.failed`: when and why refreshing failed, so the run that next serves the entry can say so. It holds no secret.

use super::key::CacheKey;
use serde::{Deserialize, Serialize};

/// The most a record may hold; a bigger one is ignored.
pub(super) const MAX_LEN: u64 = 4096;

/// The longest reason kept, in characters (AWS messages can be long).
const MAX_REASON: usize = 1000;

/// A refresh of the entry that expires at `expiration` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFailure {
    /// The expiry of the entry the failed refresh was to replace: a record
    /// about any other entry is stale and ignored.
    pub expiration: i64,
    /// When it failed, in seconds since the Unix epoch.
    pub at: i64,
    /// Why, as the error would have said it.
    pub reason: String,
}

impl RefreshFailure {
    /// A record, its reason shortened to a sane length.
    pub fn new(expiration: i64, at: i64, reason: &str) -> RefreshFailure {
        RefreshFailure {
            expiration,
            at,
            reason: reason.chars().take(MAX_REASON).collect(),
        }
    }

    /// The record's file name in the cache directory.
    pub(super) fn name(key: &CacheKey) -> String {
        format!("{key}.failed")
    }

    /// The stored form.
    pub(super) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a failure record always serializes")
    }

    /// Reads a stored form; anything else is `None`.
    pub(super) fn decode(bytes: &[u8]) -> Option<RefreshFailure> {
        serde_json::from_slice(bytes).ok()
    }

    /// The warning for a run that serves the `noun` ("password") at `now`.
    pub fn describe(&self, noun: &str, now: i64) -> String {
        let when = u64::try_from(self.at)
            .ok()
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| self.at.to_string());
        format!(
            "refreshing the cached {noun} in the background failed {} s ago (at {when}): {}; \
             the cached {noun} is still valid for {} s",
            (now - self.at).max(0),
            self.reason,
            (self.expiration - now).max(0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_says_when_why_and_how_long() {
        let f = RefreshFailure::new(
            1_000_060,
            1_000_000,
            "ExpiredToken: the SSO session expired",
        );
        assert_eq!(RefreshFailure::decode(&f.encode()), Some(f.clone()));
        assert_eq!(
            f.describe("password", 1_000_010),
            "refreshing the cached password in the background failed 10 s ago \
             (at 1970-01-12T13:46:40Z): ExpiredToken: the SSO session expired; \
             the cached password is still valid for 50 s"
        );
        assert_eq!(RefreshFailure::decode(b"not json"), None);
        let long = RefreshFailure::new(0, 0, &"x".repeat(5000));
        assert_eq!(long.reason.len(), MAX_REASON);
        assert!((long.encode().len() as u64) < MAX_LEN);
    }
}
