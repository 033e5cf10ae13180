//! Linux kernel keyutils: entries as `user` keys in the caller's persistent keyring, reached through the process keyring.
//!
//! Why not the session keyring: a plain login shell often has no session
//! keyring of its own, only the user session keyring `_uid_ses.N`. Asking the
//! kernel for the persistent keyring "via the session" then makes the process
//! join a new anonymous session keyring, and a keyring id taken before that
//! call is no longer possessed: keys created `3f010000` (possessor all, user
//! view) then fail with EACCES. Linking the persistent keyring into the
//! *process* keyring leaves the session alone, makes every key in it
//! possessed for this process only, and is dropped at `execve`, so a command
//! run by `exec` inherits nothing.

use super::key::CacheKey;
use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier};
use zeroize::Zeroizing;

/// The key description, kept from earlier versions so older entries are found:
/// `keyring:<key>@redshift-creds`.
pub fn description(key: &CacheKey) -> String {
    format!("keyring:{key}@{}", super::key::SERVICE)
}

/// The user's persistent keyring, linked into this process's keyring.
#[derive(Debug, Clone, Copy)]
pub struct Keyutils {
    ring: KeyRing,
}

fn why(e: KeyError) -> String {
    match e {
        KeyError::AccessDenied => "access refused (EACCES)".into(),
        KeyError::PermissionDenied => "not permitted (EPERM)".into(),
        KeyError::QuotaExceeded => "the key quota is exhausted".into(),
        KeyError::OperationNotSupported => "keyutils is not supported here".into(),
        other => format!("{other:?}"),
    }
}

impl Keyutils {
    /// Attaches the persistent keyring to the process keyring (created if
    /// needed), which keeps it possessed for the life of this process.
    pub fn open() -> Result<Keyutils, String> {
        let ring = KeyRing::get_persistent(KeyRingIdentifier::Process)
            .map_err(|e| format!("cannot attach the persistent keyring: {}", why(e)))?;
        Ok(Keyutils { ring })
    }

    fn find(&self, key: &CacheKey) -> Result<Option<Key>, String> {
        match self.ring.search(&description(key)) {
            Ok(k) => Ok(Some(k)),
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Ok(None)
            }
            Err(e) => Err(why(e)),
        }
    }

    /// Reads the entry, `None` when there is none.
    pub fn load(&self, key: &CacheKey) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let Some(k) = self.find(key)? else {
            return Ok(None);
        };
        match k.read_to_vec() {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            // Expired or invalidated between the search and the read.
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Ok(None)
            }
            Err(e) => Err(why(e)),
        }
    }

    /// Creates or updates the entry (one `add_key`, so a reader sees the old
    /// payload or the new one), then gives it a kernel timeout at `expires`
    /// (Unix seconds), so no key outlives its password.
    pub fn save(&self, key: &CacheKey, bytes: &[u8], expires: i64) -> Result<(), String> {
        let k = self.ring.add_key(&description(key), bytes).map_err(why)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let left = usize::try_from(expires.saturating_sub(now).max(1)).unwrap_or(1);
        if let Err(e) = k.set_timeout(left) {
            let _ = k.invalidate();
            return Err(format!("cannot set the key's timeout: {}", why(e)));
        }
        Ok(())
    }

    /// Invalidates the entry; `Ok(false)` when there was none.
    pub fn delete(&self, key: &CacheKey) -> Result<bool, String> {
        let mut any = false;
        // An older version may have left more than one copy reachable.
        while let Some(k) = self.find(key)? {
            k.invalidate().map_err(why)?;
            any = true;
            if self
                .find(key)?
                .is_some_and(|again| again.get_id() == k.get_id())
            {
                return Err("the key survived invalidation".into());
            }
        }
        Ok(any)
    }
}
