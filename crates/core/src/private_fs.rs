//! Filesystem safety, in one place: the uid lookup, owner checks, private directories opened once and used by handle, capped reads that never block, and atomic writes.
//!
//! The cache, pgpass and housekeeping all go through here. A directory is
//! checked once and then held open (`O_DIRECTORY | O_NOFOLLOW`); every file
//! operation after that is relative to the handle (`openat`, `renameat`,
//! `unlinkat`), so swapping the directory or a parent for a symlink cannot
//! redirect anything. Files are opened `O_NOFOLLOW | O_NONBLOCK` and checked
//! with `fstat` on the open handle, so a symlink, FIFO or device is refused,
//! never followed, waited on or replaced.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[cfg(unix)]
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};

/// The real user id of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The mode bits of a stat (`st_mode` is a `u16` on some Unixes).
#[cfg(unix)]
#[allow(clippy::useless_conversion)]
fn mode_bits(st: &rustix::fs::Stat) -> u32 {
    u32::from(st.st_mode)
}

/// A directory held open by handle. Every operation on its entries is
/// relative to that handle, so the directory cannot be swapped underneath.
#[derive(Debug)]
pub struct SafeDir {
    path: PathBuf,
    #[cfg(unix)]
    fd: OwnedFd,
}

/// What the owner and type check of an open file found wrong.
fn describe_kind(kind: &str, path: &Path) -> String {
    format!("{} is not a regular file (it is {kind})", path.display())
}

impl SafeDir {
    /// The path the directory was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure `dir` exists and is private to this user, then holds it
    /// open: created (with any missing parents) mode 0700 whatever the umask;
    /// refused when it is a symlink, another user's, or open to the group or
    /// others. Returns a reason fit for a message when it cannot.
    pub fn ensure_private(dir: &Path) -> Result<SafeDir, String> {
        Self::ensure_private_as(dir, "the cache directory")
    }

    /// [`SafeDir::ensure_private`] for a directory that messages call `what`
    /// ("the socket directory"): the one rule for every private directory.
    pub fn ensure_private_as(dir: &Path, what: &str) -> Result<SafeDir, String> {
        Self::open_private(dir, true, what)?.ok_or_else(|| unreachable_missing(dir, what))
    }

    /// Like [`SafeDir::ensure_private`], but a missing directory is `None`
    /// and is not created (for `list` and `clear`).
    pub fn open_private_existing(dir: &Path) -> Result<Option<SafeDir>, String> {
        Self::open_private(dir, false, "the cache directory")
    }

    fn open_private(dir: &Path, create: bool, what: &str) -> Result<Option<SafeDir>, String> {
        let created = match open_dir(dir) {
            Ok(d) => return d.check_private(what).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                create_private(dir)
                    .map_err(|e| format!("cannot create {what} {}: {e}", dir.display()))?;
                open_dir(dir)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_not_a_dir(&e) => {
                return Err(format!("{} is not a directory", dir.display()));
            }
            Err(e) => {
                return Err(format!("cannot read {what} {}: {e}", dir.display()));
            }
        };
        let d = created.map_err(|e| format!("cannot read {what} {}: {e}", dir.display()))?;
        // mkdir's mode is masked by the umask: make the new directory exactly 0700.
        #[cfg(unix)]
        let _ = rustix::fs::fchmod(&d.fd, Mode::from_raw_mode(0o700));
        d.check_private(what).map(Some)
    }

    #[cfg(unix)]
    fn check_private(self, what: &str) -> Result<SafeDir, String> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| {
            format!(
                "cannot read {what} {}: {}",
                self.path.display(),
                io::Error::from(e)
            )
        })?;
        let uid = current_uid();
        if st.st_uid != uid {
            return Err(format!(
                "{what} {} belongs to uid {}, not to you (uid {uid})",
                self.path.display(),
                st.st_uid
            ));
        }
        let mode = mode_bits(&st) & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what} {} is open to other users (mode {mode:o}); run: chmod 700 {}",
                self.path.display(),
                self.path.display()
            ));
        }
        Ok(self)
    }

    #[cfg(not(unix))]
    fn check_private(self, _what: &str) -> Result<SafeDir, String> {
        Ok(self)
    }

    /// Opens the entry `name` for reading without following a symlink and
    /// without blocking on a FIFO, and checks on the open handle that it is
    /// a regular file of this user. `Ok(None)` when it does not exist.
    pub fn open_file(&self, name: &str) -> io::Result<Option<File>> {
        match self.open_raw(name) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[cfg(unix)]
    fn open_raw(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    #[cfg(not(unix))]
    fn open_raw(&self, name: &str) -> io::Result<File> {
        File::open(self.path.join(name))
    }

    /// Checks an open entry: a regular file that belongs to this user, and
    /// with `private`, one that nobody else can read.
    pub fn check_own_file(&self, file: &File, name: &str, private: bool) -> Result<(), String> {
        check_own_file(file, &self.path.join(name), private)
    }

    /// Reads at most `limit` bytes of `file` into a zeroizing buffer. The buffer has room
    /// for a record up front (64 KiB at most): a growing one would leave copies of what it
    /// held in freed memory, unzeroed, and take a read per doubling.
    pub fn read_capped(file: &mut File, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
        let room = usize::try_from(limit).unwrap_or(usize::MAX).min(64 * 1024) + 1;
        let mut bytes = Zeroizing::new(Vec::with_capacity(room));
        file.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Reads a small record (at most `limit` bytes) that must be a regular
    /// file of ours; anything else, or a bigger file, is `None`.
    pub fn read_record(&self, name: &str, limit: u64) -> Option<Zeroizing<Vec<u8>>> {
        let mut file = self.open_file(name).ok()??;
        self.check_own_file(&file, name, false).ok()?;
        let bytes = Self::read_capped(&mut file, limit + 1).ok()?;
        (bytes.len() as u64 <= limit).then_some(bytes)
    }

    /// Replaces the entry `name` atomically with `content`: a 0600 temporary
    /// file created with `O_EXCL` in this directory, flushed, then renamed
    /// over it. A symlink at `name` is replaced, never followed.
    pub fn write_atomically(&self, name: &str, content: &[u8]) -> io::Result<()> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = format!(".{name}.redshift-creds.{}.{n}.tmp", std::process::id());
        let result = (|| {
            let mut file = self.create_new(&tmp)?;
            file.write_all(content)?;
            file.sync_all()?;
            self.rename(&tmp, name)
        })();
        if result.is_err() {
            let _ = self.remove(&tmp);
        }
        result
    }

    #[cfg(unix)]
    fn create_new(&self, name: &str) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?;
        Ok(File::from(fd))
    }

    #[cfg(not(unix))]
    fn create_new(&self, name: &str) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))
    }

    #[cfg(unix)]
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    #[cfg(not(unix))]
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    /// Removes the entry `name` (a symlink itself, never its target).
    #[cfg(unix)]
    pub fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Removes the entry `name`.
    #[cfg(not(unix))]
    pub fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    /// Opens (creating it 0600 when missing) the lock file `name`, never
    /// through a symlink.
    #[cfg(unix)]
    pub fn open_lock_file(&self, name: &str) -> io::Result<File> {
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?;
        let file = File::from(fd);
        check_own_file(&file, &self.path.join(name), false).map_err(io::Error::other)?;
        Ok(file)
    }

    /// Opens (creating it when missing) the lock file `name`.
    #[cfg(not(unix))]
    pub fn open_lock_file(&self, name: &str) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path.join(name))
    }

    /// The names of the entries in this directory.
    #[cfg(unix)]
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().to_str()
                && name != "."
                && name != ".."
            {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    /// The names of the entries in this directory.
    #[cfg(not(unix))]
    pub fn names(&self) -> io::Result<Vec<String>> {
        Ok(std::fs::read_dir(&self.path)?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect())
    }
}

fn unreachable_missing(dir: &Path, what: &str) -> String {
    format!("cannot create {what} {}", dir.display())
}

#[cfg(unix)]
fn open_dir(dir: &Path) -> io::Result<SafeDir> {
    let flags =
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(rustix::fs::CWD, dir, flags, Mode::empty())?;
    Ok(SafeDir {
        path: dir.to_path_buf(),
        fd,
    })
}

#[cfg(not(unix))]
fn open_dir(dir: &Path) -> io::Result<SafeDir> {
    if std::fs::metadata(dir)?.is_dir() {
        Ok(SafeDir {
            path: dir.to_path_buf(),
        })
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ))
    }
}

/// A symlink (ELOOP under O_NOFOLLOW) or a file where a directory was expected.
fn is_not_a_dir(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(c) if c == libc::ELOOP || c == libc::ENOTDIR)
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::NotADirectory
    }
}

/// Creates `dir` and any missing parents, each mode 0700 whatever the umask
/// (mkdir's mode can only lose bits to the umask, never gain them).
#[cfg(unix)]
fn create_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Checks an open file on its handle: a regular file that belongs to this
/// user, and with `private`, one that nobody else can read.
#[cfg(unix)]
pub fn check_own_file(file: &File, path: &Path, private: bool) -> Result<(), String> {
    let st = rustix::fs::fstat(file.as_fd())
        .map_err(|e| format!("cannot stat {}: {}", path.display(), io::Error::from(e)))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Fifo => return Err(describe_kind("a FIFO", path)),
        FileType::CharacterDevice | FileType::BlockDevice => {
            return Err(describe_kind("a device", path));
        }
        FileType::Directory => return Err(describe_kind("a directory", path)),
        FileType::Socket => return Err(describe_kind("a socket", path)),
        _ => return Err(describe_kind("not a plain file", path)),
    }
    if st.st_uid != current_uid() {
        return Err(format!(
            "{} belongs to uid {}, not to you",
            path.display(),
            st.st_uid
        ));
    }
    let mode = mode_bits(&st) & 0o777;
    if private && mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by other users (mode {mode:o}); it was ignored and will be replaced",
            path.display()
        ));
    }
    Ok(())
}

/// Checks an open file: a regular file.
#[cfg(not(unix))]
pub fn check_own_file(file: &File, path: &Path, _private: bool) -> Result<(), String> {
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(describe_kind("not a plain file", path)),
    }
}

#[cfg(unix)]
mod resolve;
#[cfg(unix)]
pub use resolve::open_for_update;
#[cfg(unix)]
mod strict;
#[cfg(unix)]
pub use strict::{check_parents, check_trusted_file};

/// Every directory above `dir` is changeable only by this user or root (see the Unix version).
#[cfg(not(unix))]
pub fn check_parents(_dir: &Path) -> Result<(), String> {
    Ok(())
}

/// A file we trust is writable only by this user (see the Unix version).
#[cfg(not(unix))]
pub fn check_trusted_file(_file: &File, _path: &Path, _home: Option<&Path>) -> Result<(), String> {
    Ok(())
}

/// Creates `dir` and any missing parents, each mode 0700 whatever the umask;
/// an existing directory is left as it is (for config directories, which
/// need not be private, only not writable by others).
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    create_private(dir)
}

/// Resolves `path` for an update by this user (see the Unix version).
#[cfg(not(unix))]
pub fn open_for_update(path: &Path) -> Result<(SafeDir, String), String> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} names no file", path.display()))?;
    let d = open_dir(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    Ok((d, name))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_0700_directory_and_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/redshift-creds");
        SafeDir::ensure_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
    }

    #[test]
    fn refuses_a_directory_others_can_enter() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = SafeDir::ensure_private(tmp.path()).unwrap_err();
        assert!(err.contains("open to other users (mode 755)"), "{err}");
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[test]
    fn a_group_readable_directory_is_refused_by_the_name_it_is_given() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sock");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let err = SafeDir::ensure_private_as(&dir, "the socket directory").unwrap_err();
        assert_eq!(
            err,
            format!(
                "the socket directory {0} is open to other users (mode 750); run: chmod 700 {0}",
                dir.display()
            )
        );
    }

    #[test]
    fn refuses_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = SafeDir::ensure_private(&link).unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_not_made_for_a_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nothing");
        assert!(SafeDir::open_private_existing(&dir).unwrap().is_none());
        assert!(!dir.exists());
    }

    #[test]
    fn writes_replace_a_symlink_and_never_follow_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::ensure_private(&tmp.path().join("d")).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("x.meta")).unwrap();
        dir.write_atomically("x.meta", b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.path().join("x.meta")).unwrap(), b"new");
        assert_eq!(mode(&dir.path().join("x.meta")), 0o600);
        assert_eq!(dir.names().unwrap(), vec!["x.meta".to_string()]);
    }

    #[test]
    fn a_record_must_be_a_small_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::ensure_private(&tmp.path().join("d")).unwrap();
        dir.write_atomically("small", b"12345").unwrap();
        assert_eq!(&dir.read_record("small", 5).unwrap()[..], b"12345");
        assert!(dir.read_record("small", 4).is_none(), "too big");
        assert!(dir.read_record("missing", 5).is_none());
        let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(
            dir.read_record("fifo", 5).is_none(),
            "a FIFO is skipped, not waited on"
        );
    }

    #[test]
    fn an_update_follows_a_symlink_of_ours_and_refuses_shared_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        std::fs::create_dir(home.join("dotfiles")).unwrap();
        std::os::unix::fs::symlink("dotfiles/pgpass", home.join(".pgpass")).unwrap();
        let (dir, name) = open_for_update(&home.join(".pgpass")).unwrap();
        assert_eq!(name, "pgpass");
        assert_eq!(
            dir.path(),
            std::fs::canonicalize(home.join("dotfiles")).unwrap()
        );

        let shared = home.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_for_update(&shared.join("pgpass")).unwrap_err();
        assert!(
            err.contains("can be written by other users (mode 777)"),
            "{err}"
        );
        // Sticky: a new entry is fine (the sticky bit protects it).
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_for_update(&shared.join("pgpass")).is_ok());
    }
}
