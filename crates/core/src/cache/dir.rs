//! The private per-user cache directory: created 0700, refused when others can enter it.

use std::io;
use std::path::Path;

/// Makes sure `dir` exists and is private to this user: created with mode
/// 0700 when missing, refused when it is a symlink, another user's, or open to
/// the group or others. Returns a reason fit for a message when it cannot.
pub fn ensure_private(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(dir)
            .map_err(|e| format!("cannot create the cache directory {}: {e}", dir.display()))?,
        Err(e) => {
            return Err(format!(
                "cannot read the cache directory {}: {e}",
                dir.display()
            ));
        }
    }
    check_private(dir)
}

#[cfg(unix)]
fn create(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read the cache directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(format!(
            "the cache directory {} belongs to uid {}, not to you (uid {uid})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the cache directory {} is open to other users (mode {:o}); run: chmod 700 {}",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(dir: &Path) -> Result<(), String> {
    if std::fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        Ok(())
    } else {
        Err(format!("{} is not a directory", dir.display()))
    }
}

/// The real user id of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/redshift-creds");
        ensure_private(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn refuses_a_directory_others_can_enter() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private(tmp.path()).unwrap_err();
        assert!(err.contains("open to other users (mode 755)"), "{err}");
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[test]
    fn refuses_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ensure_private(&link).unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
