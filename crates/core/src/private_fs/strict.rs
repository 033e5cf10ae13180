//! The path rule for what we trust but did not write ourselves, in the manner of OpenSSH's StrictModes: a socket directory's parents, a config file and the directories above it.

use super::{current_uid, mode_bits, open_for_update};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Checks every directory above `dir` by the standard path rule: each must
/// be changeable only by this user or root, so nobody else can swap `dir`
/// (a root-owned sticky directory such as /tmp counts only when `dir` is
/// ours or still to be made). `dir` itself, when it exists, must be ours;
/// its own mode is the caller's rule. The message names the directory.
pub fn check_parents(dir: &Path) -> Result<(), String> {
    match rustix::fs::lstat(dir) {
        Ok(st) if st.st_uid != current_uid() => {
            return Err(format!(
                "{} belongs to uid {}, not to you (uid {})",
                dir.display(),
                st.st_uid,
                current_uid()
            ));
        }
        _ => {}
    }
    open_for_update(dir).map(drop)
}

/// Checks a file we are about to trust (opened as `file` from `path`): it
/// and every directory on its resolved path inside `home` (home included)
/// must be writable by nobody but this user or root, as OpenSSH's
/// StrictModes asks of `~/.ssh`. Directories outside `home` are not ours to
/// judge. The message names the file or directory and the rule.
pub fn check_trusted_file(file: &File, path: &Path, home: Option<&Path>) -> Result<(), String> {
    let st = rustix::fs::fstat(file).map_err(|e| {
        format!(
            "cannot stat {}: {}",
            path.display(),
            std::io::Error::from(e)
        )
    })?;
    check_writers(path, st.st_uid, mode_bits(&st), None)?;
    let Some(home) = home.and_then(|h| std::fs::canonicalize(h).ok()) else {
        return Ok(());
    };
    let resolved = std::fs::canonicalize(path)
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    let mut entry_owner = st.st_uid;
    let mut dir: Option<PathBuf> = resolved.parent().map(Path::to_path_buf);
    while let Some(d) = dir.filter(|d| d.starts_with(&home)) {
        let st = rustix::fs::stat(&d)
            .map_err(|e| format!("cannot stat {}: {}", d.display(), std::io::Error::from(e)))?;
        check_writers(&d, st.st_uid, mode_bits(&st), Some(entry_owner))?;
        entry_owner = st.st_uid;
        dir = d.parent().map(Path::to_path_buf);
    }
    Ok(())
}

/// The rule for one file or directory: owned by this user or root, and not
/// writable by the group or others; a sticky directory may be, when the
/// entry under it (`entry_owner`) is this user's.
fn check_writers(
    path: &Path,
    owner: u32,
    mode: u32,
    entry_owner: Option<u32>,
) -> Result<(), String> {
    let me = current_uid();
    if owner != me && owner != 0 {
        return Err(format!(
            "{} belongs to uid {owner}: it must be yours or root's",
            path.display()
        ));
    }
    let sticky_and_ours = mode & 0o1000 != 0 && entry_owner == Some(me);
    if mode & 0o022 != 0 && !sticky_and_ours {
        return Err(format!(
            "{} can be written by other users (mode {:o}); run: chmod go-w {}",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_and_its_directories_in_home_must_not_be_writable_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let dir = home.join(".config/redshift-creds");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "").unwrap();
        chmod(&path, 0o644);
        let check = || check_trusted_file(&File::open(&path).unwrap(), &path, Some(home));
        assert_eq!(check(), Ok(()));

        chmod(&path, 0o666);
        let err = check().unwrap_err();
        assert!(
            err.contains("config.toml can be written by other users (mode 666)"),
            "{err}"
        );
        chmod(&path, 0o600);

        chmod(&home.join(".config"), 0o777);
        let err = check().unwrap_err();
        assert!(
            err.contains(".config can be written by other users (mode 777)"),
            "{err}"
        );
        chmod(&home.join(".config"), 0o755);

        chmod(home, 0o775);
        let err = check().unwrap_err();
        assert!(
            err.contains("can be written by other users (mode 775)"),
            "{err}"
        );
        chmod(home, 0o700);
        // Outside home nothing but the file is judged.
        assert_eq!(
            check_trusted_file(&File::open(&path).unwrap(), &path, Some(&dir.join("x"))),
            Ok(())
        );
    }

    #[test]
    fn a_socket_directory_under_a_parent_others_may_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o777);
        let err = check_parents(&shared.join("sock")).unwrap_err();
        assert!(
            err.contains("shared can be written by other users"),
            "{err}"
        );
        assert!(err.contains(&shared.display().to_string()), "{err}");
        chmod(&shared, 0o755);
        assert_eq!(check_parents(&shared.join("sock")), Ok(()));
        // /tmp is root's and sticky: fine for a directory of ours.
        assert_eq!(
            check_parents(&std::env::temp_dir().join("x-not-there")),
            Ok(())
        );
    }
}
