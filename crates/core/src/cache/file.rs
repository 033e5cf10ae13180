//! The file store: one 0600 JSON file per key in the private cache directory, written atomically.

use super::entry::MAX_ENCODED_LEN;
use super::key::CacheKey;
use super::{Load, StoreError};
use crate::private_fs::SafeDir;
use std::path::PathBuf;
use std::sync::Arc;

/// Entries as files named `<key>.json` in a directory only this user can
/// enter, held open so that every read and write is relative to it.
#[derive(Debug)]
pub struct FileStore {
    dir: Arc<SafeDir>,
}

impl FileStore {
    /// The store in an already checked, open cache directory.
    pub fn new(dir: Arc<SafeDir>) -> FileStore {
        FileStore { dir }
    }

    /// Opens the store, creating its directory (0700) when missing.
    #[cfg(test)]
    pub fn open(dir: &std::path::Path) -> Result<FileStore, String> {
        Ok(FileStore::new(Arc::new(SafeDir::ensure_private(dir)?)))
    }

    fn name(key: &CacheKey) -> String {
        format!("{key}.json")
    }

    /// The file that holds `key`'s entry (for messages).
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.path().join(Self::name(key))
    }

    /// Reads `key`'s raw entry. A missing file is [`Load::Missing`]; a file
    /// that others could read, or that is not a plain file of ours, is refused.
    pub fn load(&self, key: &CacheKey) -> Result<Load, StoreError> {
        let name = Self::name(key);
        let mut file = match self.dir.open_file(&name) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Load::Missing),
            Err(e) => {
                return Ok(Load::Unreadable(format!(
                    "cannot open {}: {e}",
                    self.path(key).display()
                )));
            }
        };
        if let Err(why) = self.dir.check_own_file(&file, &name, true) {
            return Ok(Load::Refused(why));
        }
        match SafeDir::read_capped(&mut file, (MAX_ENCODED_LEN + 1) as u64) {
            Ok(bytes) => Ok(Load::Found(bytes)),
            Err(e) => Ok(Load::Unreadable(format!(
                "cannot read {}: {e}",
                self.path(key).display()
            ))),
        }
    }

    /// Writes `key`'s entry atomically: a 0600 temporary file in the same
    /// directory, flushed to disk, then renamed over the old entry. A reader
    /// sees the old entry or the new one, never a torn one.
    pub fn save(&self, key: &CacheKey, bytes: &[u8]) -> Result<(), StoreError> {
        self.dir
            .write_atomically(&Self::name(key), bytes)
            .map_err(|e| StoreError(format!("cannot write {}: {e}", self.path(key).display())))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::testing::request_with;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, FileStore, CacheKey) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::open(&tmp.path().join("cache")).unwrap();
        (tmp, store, CacheKey::of(&request_with(&[], &[])))
    }

    #[test]
    fn saves_0600_and_reads_back() {
        let (_tmp, store, key) = setup();
        assert!(matches!(store.load(&key).unwrap(), Load::Missing));
        store.save(&key, b"{\"x\":1}").unwrap();
        let mode = std::fs::metadata(store.path(&key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        match store.load(&key).unwrap() {
            Load::Found(b) => assert_eq!(&b[..], b"{\"x\":1}"),
            _ => panic!("expected the entry"),
        }
        store.save(&key, b"second").unwrap();
        match store.load(&key).unwrap() {
            Load::Found(b) => assert_eq!(&b[..], b"second"),
            _ => panic!("expected the new entry"),
        }
        let leftovers: Vec<_> = std::fs::read_dir(store.dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_a_file_others_can_read() {
        let (_tmp, store, key) = setup();
        store.save(&key, b"{}").unwrap();
        std::fs::set_permissions(store.path(&key), std::fs::Permissions::from_mode(0o644)).unwrap();
        match store.load(&key).unwrap() {
            Load::Refused(why) => assert!(why.contains("readable by other users"), "{why}"),
            _ => panic!("expected a refusal"),
        }
    }

    #[test]
    fn does_not_follow_a_symlink() {
        let (tmp, store, key) = setup();
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, b"{}").unwrap();
        std::os::unix::fs::symlink(&target, store.path(&key)).unwrap();
        assert!(matches!(store.load(&key).unwrap(), Load::Unreadable(_)));
    }

    #[test]
    fn reads_no_more_than_the_limit() {
        let (_tmp, store, key) = setup();
        store.save(&key, &vec![b'x'; MAX_ENCODED_LEN * 4]).unwrap();
        match store.load(&key).unwrap() {
            Load::Found(b) => assert_eq!(b.len(), MAX_ENCODED_LEN + 1),
            _ => panic!("expected the entry"),
        }
    }
}
