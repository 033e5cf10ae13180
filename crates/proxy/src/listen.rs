//! Listen addresses: binding loopback TCP and libpq-style Unix
//! sockets (`DIR/.s.PGSQL.PORT` in a private directory), and cleaning up stale sockets.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::ProxyError;

/// The port a Unix socket is named after when its target has no TCP listener (Redshift's).
pub(crate) const DEFAULT_PORT: u16 = 5439;

/// Where a target listens. The engine binds what it is given: the caller checks the value
/// first (the `redshift-creds proxy` command with the core's `config_file::check_listen`, which
/// allows loopback TCP and Unix sockets only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A loopback TCP address (`127.0.0.1:PORT`, `[::1]:PORT`; port 0 picks one).
    Tcp(SocketAddr),
    /// A directory for a libpq-style socket `DIR/.s.PGSQL.PORT` (from `unix:DIR`).
    Unix(PathBuf),
}

/// An address a [`crate::Proxy`] is listening on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// A TCP listener, with the port the kernel picked for port 0.
    Tcp(SocketAddr),
    /// The path of a Unix socket (`DIR/.s.PGSQL.PORT`).
    Unix(PathBuf),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Tcp(a) => write!(f, "{a}"),
            Bound::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Binds a TCP listener (non-blocking, for Tokio).
pub(crate) fn bind_tcp_std(addr: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    };
    bind().map_err(|source| ProxyError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Binds `dir/.s.PGSQL.port`, after making sure `dir` is private and removing a stale
/// socket of ours.
pub(crate) fn bind_unix(
    dir: &Path,
    port: u16,
) -> Result<(std::os::unix::net::UnixListener, PathBuf), ProxyError> {
    private_dir(dir)?;
    let path = dir.join(format!(".s.PGSQL.{port}"));
    let bind_err = |source| ProxyError::Bind {
        addr: path.display().to_string(),
        source,
    };
    remove_stale(&path).map_err(bind_err)?;
    let l = std::os::unix::net::UnixListener::bind(&path).map_err(bind_err)?;
    l.set_nonblocking(true).map_err(bind_err)?;
    Ok((l, path))
}

/// Asserts, failing closed, that `dir` is private by the rule of the core's `private_fs`,
/// which `redshift-creds-aws` has already made and checked it by (its parents by the path
/// rule, then `dir` 0700, ours, no group or other bits): a directory of the real user with
/// no group or other bits, never a symlink. A library caller's missing `dir` is made 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), ProxyError> {
    let err = |reason: String| ProxyError::SocketDir {
        dir: dir.to_owned(),
        reason,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away, never added: set exactly 0700.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| err(format!("cannot set its mode: {e}")))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(format!("cannot create it: {e}"))),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
    check_private(&meta, rustix::process::getuid().as_raw()).map_err(err)
}

/// `private_fs`'s rule for a private directory (the real uid, mode `0o077`), on its metadata.
pub(crate) fn check_private(meta: &std::fs::Metadata, uid: u32) -> Result<(), String> {
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "owned by uid {}, not by us (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets group or others in (chmod 700 it)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Removes `path` if it is a socket we own that nobody listens on. A live socket is left in
/// place (the bind then fails with "address in use"); anything else is an error.
fn remove_stale(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() || meta.uid() != crate::peer::own_uid() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file that is not a socket of ours is in the way",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another process is listening on it",
        )),
        Err(_) => std::fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_dir_and_refuses_an_open_one() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("sock");
        private_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = private_dir(&d).unwrap_err().to_string();
        assert!(e.contains("group or others"), "{e}");
        let meta = std::fs::metadata(t.path()).unwrap();
        let e = check_private(&meta, rustix::process::getuid().as_raw() + 1).unwrap_err();
        assert!(e.contains("owned by uid"), "{e}");
    }

    #[test]
    fn a_group_readable_socket_dir_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("sock");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
        let e = private_dir(&d).unwrap_err().to_string();
        assert!(e.contains("mode 750 lets group or others in"), "{e}");
        assert!(bind_unix(&d, 1).is_err(), "nothing is bound in it");
        assert!(!d.join(".s.PGSQL.1").exists());
    }

    #[test]
    fn removes_only_dead_sockets_of_ours() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(".s.PGSQL.1");
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        remove_stale(&p).unwrap();
        assert!(!p.exists());
        let _live = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert!(remove_stale(&p).is_err());
        assert!(p.exists());
        let f = t.path().join(".s.PGSQL.2");
        std::fs::write(&f, "x").unwrap();
        assert!(remove_stale(&f).is_err());
    }
}
