//! The file store: one 0600 JSON file per key in the private cache directory, written atomically.

use super::entry::MAX_ENCODED_LEN;
use super::key::CacheKey;
use super::{Load, StoreError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Entries as files named `<key>.json` in a directory only this user can enter.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens the store, creating its directory (0700) when missing.
    pub fn open(dir: &Path) -> Result<FileStore, String> {
        super::dir::ensure_private(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The file that holds `key`'s entry.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// Reads `key`'s raw entry. A missing file is [`Load::Missing`]; a file
    /// that others could read, or that is not a plain file of ours, is refused.
    pub fn load(&self, key: &CacheKey) -> Result<Load, StoreError> {
        let path = self.path(key);
        let mut file = match open_no_follow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Load::Missing),
            Err(e) => {
                return Ok(Load::Unreadable(format!(
                    "cannot open {}: {e}",
                    path.display()
                )));
            }
        };
        if let Err(why) = check_private_file(&file, &path) {
            return Ok(Load::Refused(why));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        let limit = (MAX_ENCODED_LEN + 1) as u64;
        match (&mut file).take(limit).read_to_end(&mut bytes) {
            Ok(_) => Ok(Load::Found(bytes)),
            Err(e) => Ok(Load::Unreadable(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes `key`'s entry atomically: a 0600 temporary file in the same
    /// directory, flushed to disk, then renamed over the old entry. A reader
    /// sees the old entry or the new one, never a torn one.
    pub fn save(&self, key: &CacheKey, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key);
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = create_private(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError(format!("cannot write {}: {e}", path.display()))
        })
    }
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn check_private_file(file: &File, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.uid() != super::dir::current_uid() {
        return Err(format!(
            "{} belongs to uid {}, not to you",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by other users (mode {:o}); it was ignored and will be replaced",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_file(_file: &File, _path: &Path) -> Result<(), String> {
    Ok(())
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
        let leftovers: Vec<_> = std::fs::read_dir(&store.dir).unwrap().collect();
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
