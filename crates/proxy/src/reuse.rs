//! Whether a target's tokens can serve more than one connection: it remembers (as a
//! SHA-256, never the token) the last token the server accepted, and after tokens that had
//! been accepted before are refused again and again, decides they are single-use, so every
//! connection asks its source for a fresh one. A leaf; login.rs keeps one per target.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::source::{Login, LoginSecret};

/// How many refusals in a row of a token the server had accepted before make a target's
/// tokens single-use. One could be a token revoked early; two in a row is a pattern.
pub(crate) const SINGLE_USE_AFTER: u32 = 2;

/// One target's memory of how its tokens fare.
#[derive(Default)]
pub(crate) struct TokenReuse {
    /// SHA-256 of the last token the server accepted.
    accepted: Mutex<Option<[u8; 32]>>,
    /// Refusals in a row of a token that had been accepted before.
    refusals: AtomicU32,
    single_use: AtomicBool,
}

fn fingerprint(login: &Login) -> Option<[u8; 32]> {
    match &login.secret {
        LoginSecret::Token { token, .. } => {
            Some(Sha256::digest(token.expose_secret().as_bytes()).into())
        }
        LoginSecret::Password { .. } => None,
    }
}

impl TokenReuse {
    /// Whether every connection should ask for a fresh token.
    pub(crate) fn single_use(&self) -> bool {
        self.single_use.load(Ordering::Relaxed)
    }

    /// The server accepted `login`. A token accepted a second time proves reuse works.
    pub(crate) fn accepted(&self, login: &Login) {
        let Some(f) = fingerprint(login) else { return };
        let mut last = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        if *last == Some(f) {
            self.refusals.store(0, Ordering::Relaxed);
        }
        *last = Some(f);
    }

    /// The server refused `login`. Returns true when this made the target's tokens
    /// single-use (for a log line).
    pub(crate) fn refused(&self, login: &Login) -> bool {
        let Some(f) = fingerprint(login) else {
            return false;
        };
        let seen_before = *self.accepted.lock().unwrap_or_else(|p| p.into_inner()) == Some(f);
        if !seen_before {
            return false;
        }
        let n = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
        n >= SINGLE_USE_AFTER && !self.single_use.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn token(t: &str) -> Login {
        Login::token(SecretString::from(t), "ACCESS_TOKEN", 0)
    }

    #[test]
    fn tokens_refused_after_acceptance_twice_in_a_row_are_single_use() {
        let r = TokenReuse::default();
        // A token never accepted is just a bad token.
        assert!(!r.refused(&token("a")));
        r.accepted(&token("a"));
        assert!(!r.refused(&token("a")));
        assert!(!r.single_use());
        r.accepted(&token("b"));
        assert!(
            r.refused(&token("b")),
            "the second refusal in a row decides"
        );
        assert!(r.single_use());
        assert!(!r.refused(&token("b")), "said once");
        assert!(r.single_use());
    }

    #[test]
    fn a_reused_token_accepted_again_resets_the_count() {
        let r = TokenReuse::default();
        r.accepted(&token("a"));
        assert!(!r.refused(&token("a")));
        r.accepted(&token("b"));
        r.accepted(&token("b"));
        assert!(!r.refused(&token("b")));
        assert!(!r.single_use());
        let p = Login::password("u", SecretString::from("p"), 0);
        r.accepted(&p);
        assert!(!r.refused(&p));
        assert!(!r.single_use(), "passwords never count");
    }
}
