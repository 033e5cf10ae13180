//! `pgpass`: writes the connection's line into the pgpass file, once or (`--watch`) before each password expires.

use super::endpoint;
use crate::cache::RefreshLock;
use crate::cache::refresh::{Clock, SystemClock};
use crate::config::Resolved;
use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::private_fs::{self, SafeDir};
use crate::source::Source;
use crate::{pgpass, report};
use std::path::Path;
use zeroize::Zeroizing;

/// The most a pgpass file may hold; a bigger one is refused, not rewritten.
const MAX_PGPASS_LEN: u64 = 1024 * 1024;

/// Writes this connection's pgpass line; with `watch`, keeps rewriting it
/// before each password expires until the process is stopped. Unless
/// `quiet`, says on stderr what it wrote and when the next refresh is due
/// (one line per write; never the password).
pub fn pgpass(r: &Resolved, watch: bool, quiet: bool, source: &dyn Source) -> Result<(), Error> {
    super::refuse_token(r, "pgpass")?;
    let tls = r.tls();
    let path = pgpass::default_path()
        .ok_or_else(|| Error::Usage("no home directory for ~/.pgpass: set PGPASSFILE".into()))?;
    let endpoint = endpoint(r, source)?;
    // The last password written, kept only to skip identical rewrites.
    let mut written: Option<Zeroizing<String>> = None;
    loop {
        let credential = match source.credential(r) {
            Ok(c) => c,
            Err(e) if watch && e.exit_code() == 1 => {
                report::warn(&format!("{e}; trying again in 30 s"));
                std::thread::sleep(std::time::Duration::from_secs(30));
                continue;
            }
            Err(e) => return Err(e),
        };
        if written.as_ref().map(|w| w.as_str()) != Some(credential.expose_password()) {
            write_pgpass_line(r, &path, &endpoint, &credential)?;
            written = Some(Zeroizing::new(credential.expose_password().to_string()));
            if !quiet {
                let now = Clock::now(&SystemClock);
                report::note(&written_note(r, &path, &endpoint, &credential, watch, now));
            }
        }
        if !watch {
            if let Some(note) = &tls.note {
                report::warn(note);
            }
            return Ok(());
        }
        let wait = watch_wait(
            credential.expiration,
            r.settings.refresh_margin,
            Clock::now(&SystemClock),
        );
        tracing::debug!(
            wait,
            "pgpass line written; sleeping until the refresh margin"
        );
        std::thread::sleep(std::time::Duration::from_secs(wait));
    }
}

/// What `pgpass` tells the user after a write: the file, the line without its
/// password, and when the password should be refreshed.
fn written_note(
    r: &Resolved,
    path: &std::path::Path,
    endpoint: &Endpoint,
    credential: &Credential,
    watch: bool,
    now: i64,
) -> String {
    let database = r.request.db_name.as_deref().unwrap_or("*");
    let due = credential.expiration - r.settings.refresh_margin;
    let when = u64::try_from(due)
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|_| due.to_string());
    let left = humantime::format_duration(std::time::Duration::from_secs(
        u64::try_from(due - now).unwrap_or(0),
    ));
    let how = if watch {
        "refreshing"
    } else {
        "run pgpass again (or use --watch)"
    };
    format!(
        "pgpass: wrote {}:{}:{database}:{} to {}; next refresh due {when} (in {left}), {how} then",
        endpoint.host,
        endpoint.port,
        credential.db_user,
        path.display()
    )
}

/// Seconds until `pgpass --watch` refreshes again: until the refresh margin
/// begins; or, when a failed refresh left a stale but valid password (already
/// inside the margin), 30 s between attempts instead of a busy loop, and never
/// past its expiry.
fn watch_wait(expiration: i64, refresh_margin: i64, now: i64) -> u64 {
    const RETRY: i64 = 30;
    let until_margin = expiration - refresh_margin - now;
    let wait = if until_margin > 0 {
        until_margin
    } else {
        RETRY.min(expiration - now)
    };
    wait.max(1) as u64
}

/// Puts this connection's line into the pgpass file at `path`. The path is
/// resolved once, by handle, and refused unless only this user or root can
/// change the directories on the way; the file itself must be missing or a
/// regular file of this user's, at most 1 MiB. It is replaced by a new 0600
/// file renamed over it, under a lock named after the resolved path.
fn write_pgpass_line(
    r: &Resolved,
    path: &Path,
    endpoint: &Endpoint,
    credential: &Credential,
) -> Result<(), Error> {
    let port = endpoint.port.to_string();
    let line = pgpass::Line {
        host: &endpoint.host,
        port: &port,
        database: r.request.db_name.as_deref().unwrap_or("*"),
        user: &credential.db_user,
        password: credential.expose_password(),
    };
    let (dir, name) = private_fs::open_for_update(path).map_err(|why| refused(path, why))?;
    let resolved = dir.path().join(&name);
    // Serialize writers of the same file (however it is spelled) so no
    // update is lost.
    let _lock = match r.settings.cache_dir.as_deref().map(SafeDir::ensure_private) {
        Some(Ok(locks)) => RefreshLock::acquire_named(
            &locks,
            &pgpass_lock_name(&resolved),
            r.settings.lock_timeout,
        )?
        .ok(),
        _ => None,
    };
    let old = read_current(&dir, &name, path)?;
    let new = pgpass::upsert(&old, &line);
    dir.write_atomically(&name, &new)
        .map_err(|source| Error::File {
            action: "write the pgpass file",
            path: path.to_path_buf(),
            source,
        })
}

/// The pgpass file's current content: empty when it is missing; refused
/// when it is not a regular file of ours (a FIFO or device is never waited
/// on) or is larger than 1 MiB.
fn read_current(dir: &SafeDir, name: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let read_error = |source| Error::File {
        action: "read the pgpass file",
        path: path.to_path_buf(),
        source,
    };
    let Some(mut file) = dir.open_file(name).map_err(read_error)? else {
        return Ok(Zeroizing::new(Vec::new()));
    };
    dir.check_own_file(&file, name, false)
        .map_err(|why| refused(path, format!("{why}; refusing to replace it")))?;
    let bytes = SafeDir::read_capped(&mut file, MAX_PGPASS_LEN + 1).map_err(read_error)?;
    if bytes.len() as u64 > MAX_PGPASS_LEN {
        return Err(refused(
            path,
            format!(
                "{} is larger than 1 MiB; refusing to rewrite it",
                dir.path().join(name).display()
            ),
        ));
    }
    Ok(bytes)
}

fn refused(path: &Path, why: String) -> Error {
    Error::File {
        action: "write the pgpass file",
        path: path.to_path_buf(),
        source: std::io::Error::other(why),
    }
}

/// The lock name for a pgpass file: a hash of its path, so the path itself
/// appears in no file name.
fn pgpass_lock_name(path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    format!("pgpass-{}", hex::encode(&digest[..10]))
}

#[cfg(test)]
mod tests {
    use super::watch_wait;

    #[test]
    fn the_lock_name_is_a_pinned_hash_of_the_path() {
        // python3 -c 'import hashlib;print(hashlib.sha256(b"/home/u/.pgpass").hexdigest()[:20])'
        assert_eq!(
            super::pgpass_lock_name(std::path::Path::new("/home/u/.pgpass")),
            "pgpass-266ad833c4ae39630925"
        );
    }

    #[test]
    fn watch_sleeps_until_the_refresh_margin() {
        // Expires at 1000, margin 300: refresh at 700.
        assert_eq!(watch_wait(1000, 300, 100), 600);
        assert_eq!(watch_wait(1000, 300, 699), 1);
    }

    #[test]
    fn watch_backs_off_while_a_stale_password_is_served() {
        // Inside the margin (a refresh failed): 30 s between attempts...
        assert_eq!(watch_wait(1000, 300, 700), 30);
        assert_eq!(watch_wait(1000, 300, 900), 30);
        // ...but not past expiry, and never a busy loop.
        assert_eq!(watch_wait(1000, 300, 990), 10);
        assert_eq!(watch_wait(1000, 300, 1000), 1);
        assert_eq!(watch_wait(1000, 300, 5000), 1);
    }
}
