//! Resolving a path for an update by this user: walked component by component by handle, each directory and symlink on the way checked.

use super::{SafeDir, current_uid};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// More symlinks than this on one path is a loop.
const MAX_LINKS: u32 = 40;

/// A directory on the way, held open.
struct Step {
    path: PathBuf,
    fd: std::os::fd::OwnedFd,
    stat: Stat,
}

/// Resolves `path` once, by handle, and returns its directory held open and
/// the final name in it. Refused unless every directory on the resolved
/// path (and every symlink's directory) is writable only by this user or
/// root; a sticky directory such as /tmp counts only for an entry this user
/// owns. A symlink this user may trust (say `~/.pgpass` made by a dotfile
/// manager) is followed; the final entry itself is not opened here.
pub fn open_for_update(path: &Path) -> Result<(SafeDir, String), String> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot find the current directory: {e}"))?
            .join(path)
    };
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &abs);
    let mut stack = vec![open_step(
        rustix::fs::CWD,
        Path::new("/"),
        PathBuf::from("/"),
    )?];
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == "." || name.is_empty() {
            continue;
        }
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let top = stack.last().expect("the root stays");
        let last = pending.is_empty();
        let entry = match rustix::fs::statat(&top.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) if last => {
                check_dir(top, None)?;
                return finish(stack, name);
            }
            Err(e) => {
                return Err(format!(
                    "cannot read {}: {}",
                    top.path.join(&name).display(),
                    std::io::Error::from(e)
                ));
            }
        };
        check_dir(top, Some(entry.st_uid))?;
        match FileType::from_raw_mode(entry.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "too many symlinks on the way to {}",
                        path.display()
                    ));
                }
                let target = rustix::fs::readlinkat(&top.fd, name.as_os_str(), Vec::new())
                    .map_err(|e| {
                        format!(
                            "cannot read the symlink {}: {}",
                            top.path.join(&name).display(),
                            std::io::Error::from(e)
                        )
                    })?;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    stack.truncate(1);
                }
                push_components(&mut pending, &target);
            }
            FileType::Directory if !last => {
                let child = top.path.join(&name);
                let step = open_step(&top.fd, Path::new(&name), child)?;
                stack.push(step);
            }
            _ if last => return finish(stack, name),
            _ => {
                return Err(format!(
                    "{} is not a directory",
                    top.path.join(&name).display()
                ));
            }
        }
    }
    Err(format!("{} names no file", path.display()))
}

/// Pushes `path`'s components on the stack of names still to walk, so the
/// first component is popped first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

fn open_step(at: impl std::os::fd::AsFd, name: &Path, path: PathBuf) -> Result<Step, String> {
    let flags =
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(at, name, flags, Mode::empty()).map_err(|e| {
        format!(
            "cannot open {}: {}",
            path.display(),
            std::io::Error::from(e)
        )
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| {
        format!(
            "cannot stat {}: {}",
            path.display(),
            std::io::Error::from(e)
        )
    })?;
    Ok(Step { path, fd, stat })
}

/// A directory on the way may be changed only by this user or root; a
/// sticky one that others may write counts only for an entry this user owns
/// (or one still to be made, which the sticky bit then protects).
fn check_dir(dir: &Step, entry_owner: Option<u32>) -> Result<(), String> {
    let me = current_uid();
    let owner = dir.stat.st_uid;
    if owner != me && owner != 0 {
        return Err(format!(
            "{} belongs to uid {owner}: every directory on the way must be yours or root's",
            dir.path.display()
        ));
    }
    let mode = super::mode_bits(&dir.stat) & 0o7777;
    if mode & 0o022 != 0 {
        let sticky = mode & 0o1000 != 0;
        if !(sticky && entry_owner.is_none_or(|o| o == me)) {
            return Err(format!(
                "{} can be written by other users (mode {:o}); every directory on the way must be writable only by you or root",
                dir.path.display(),
                mode
            ));
        }
    }
    Ok(())
}

fn finish(mut stack: Vec<Step>, name: OsString) -> Result<(SafeDir, String), String> {
    let top = stack.pop().expect("the root stays");
    let name = name
        .into_string()
        .map_err(|n| format!("{} is not UTF-8", top.path.join(n).display()))?;
    Ok((
        SafeDir {
            path: top.path,
            fd: top.fd,
        },
        name,
    ))
}
