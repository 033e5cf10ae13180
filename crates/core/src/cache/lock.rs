//! The refresh lock: an exclusive fs4 lock on `<lock dir>/<key>.lock`, released on drop.

use super::key::CacheKey;
use crate::error::Error;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
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
        dir: &Path,
        key: &CacheKey,
        timeout: Duration,
    ) -> Result<Result<RefreshLock, String>, Error> {
        Self::acquire_named(dir, key.as_str(), timeout)
    }

    /// Takes the lock `<dir>/<name>.lock`; `name` must hold no secret.
    pub fn acquire_named(
        dir: &Path,
        name: &str,
        timeout: Duration,
    ) -> Result<Result<RefreshLock, String>, Error> {
        if let Err(why) = super::dir::ensure_private(dir) {
            return Ok(Err(why));
        }
        let path = dir.join(format!("{name}.lock"));
        let file = match open_lock_file(&path) {
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

impl Drop for RefreshLock {
    fn drop(&mut self) {
        if let Err(e) = fs4::FileExt::unlock(&self.file) {
            tracing::debug!(lock = %self.path.display(), error = %e, "unlock failed; closing releases it");
        }
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request_with;

    #[test]
    fn a_second_holder_times_out_until_the_first_drops() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        let key = CacheKey::of(&request_with(&[], &[]));
        let first = RefreshLock::acquire(&dir, &key, Duration::ZERO)
            .unwrap()
            .unwrap();
        let second = RefreshLock::acquire(&dir, &key, Duration::from_millis(50));
        assert!(matches!(second, Err(Error::LockTimeout { .. })));
        drop(first);
        let third = RefreshLock::acquire(&dir, &key, Duration::ZERO).unwrap();
        assert!(third.is_ok());
        let content = std::fs::read(dir.join(format!("{key}.lock"))).unwrap();
        assert!(content.is_empty(), "the lock file holds nothing");
    }

    #[test]
    fn an_unusable_directory_is_reported_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"").unwrap();
        let key = CacheKey::of(&request_with(&[], &[]));
        let got = RefreshLock::acquire(&file.join("locks"), &key, Duration::ZERO).unwrap();
        assert!(got.is_err());
    }
}
