//! The refresh lock: an exclusive fs4 lock on `<lock dir>/<key>.lock`, released on drop.

use super::key::CacheKey;
use crate::error::Error;
use crate::private_fs::SafeDir;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Held while one process refreshes a key; dropping it releases the lock.
/// The kernel also releases it when the holder dies, so a killed process
/// never leaves a stale lock behind.
#[derive(Debug)]
pub struct RefreshLock {
    file: File,
    path: PathBuf,
}

impl RefreshLock {
    /// Takes the lock for `key` in `dir`, waiting up to `timeout` for another
    /// holder. The lock file is empty: it names the key's hash, nothing else.
    /// `Ok(Err(reason))` means the lock file itself cannot be made.
    pub fn acquire(
        dir: &SafeDir,
        key: &CacheKey,
        timeout: Duration,
    ) -> Result<Result<RefreshLock, String>, Error> {
        Self::acquire_named(dir, key.as_str(), timeout)
    }

    /// Takes the lock `<dir>/<name>.lock`, opened relative to the held
    /// directory and never through a symlink; `name` must hold no secret.
    pub fn acquire_named(
        dir: &SafeDir,
        name: &str,
        timeout: Duration,
    ) -> Result<Result<RefreshLock, String>, Error> {
        let file_name = format!("{name}.lock");
        let path = dir.path().join(&file_name);
        let file = match dir.open_lock_file(&file_name) {
            Ok(f) => f,
            Err(e) => return Ok(Err(format!("cannot open {}: {e}", path.display()))),
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {
                    tracing::debug!(lock = %path.display(), waited = ?start.elapsed(), "lock taken");
                    return Ok(Ok(RefreshLock { file, path }));
                }
                Err(fs4::TryLockError::WouldBlock) => {}
                Err(fs4::TryLockError::Error(e)) => {
                    return Ok(Err(format!("cannot lock {}: {e}", path.display())));
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path,
                    seconds: timeout.as_secs(),
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

/// Tries, without waiting, the refresh-ahead marker `<dir>/<key>.ahead`: an
/// exclusive lock held by the one background refresh of this key while it
/// runs (the file holds nothing). `None` when another process holds it or it
/// cannot be made. `Ok(None)` when another process holds it.
pub fn try_ahead_marker(dir: &SafeDir, key: &CacheKey) -> std::io::Result<Option<File>> {
    let file = dir.open_lock_file(&format!("{key}.ahead"))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(e),
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        if let Err(e) = fs4::FileExt::unlock(&self.file) {
            tracing::debug!(lock = %self.path.display(), error = %e, "unlock failed; closing releases it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request_with;

    #[test]
    fn a_second_holder_times_out_until_the_first_drops() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::ensure_private(&tmp.path().join("locks")).unwrap();
        let key = CacheKey::of(&request_with(&[], &[]));
        let first = RefreshLock::acquire(&dir, &key, Duration::ZERO)
            .unwrap()
            .unwrap();
        let second = RefreshLock::acquire(&dir, &key, Duration::from_millis(50));
        assert!(matches!(second, Err(Error::LockTimeout { .. })));
        drop(first);
        let third = RefreshLock::acquire(&dir, &key, Duration::ZERO).unwrap();
        assert!(third.is_ok());
        let content = std::fs::read(dir.path().join(format!("{key}.lock"))).unwrap();
        assert!(content.is_empty(), "the lock file holds nothing");
    }

    #[test]
    fn one_ahead_marker_per_key_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::ensure_private(&tmp.path().join("locks")).unwrap();
        let key = CacheKey::of(&request_with(&[], &[]));
        let first = try_ahead_marker(&dir, &key).unwrap();
        assert!(first.is_some(), "the first takes it");
        assert!(
            try_ahead_marker(&dir, &key).unwrap().is_none(),
            "one at a time"
        );
        drop(first);
        assert!(
            try_ahead_marker(&dir, &key).unwrap().is_some(),
            "free again"
        );
    }

    #[test]
    fn an_unusable_directory_is_reported_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"").unwrap();
        assert!(SafeDir::ensure_private(&file.join("locks")).is_err());
    }
}
