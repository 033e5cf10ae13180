//! `pgpass`: writes the connection's line into the pgpass file, once or (`--watch`) before each password expires.

use super::endpoint;
use crate::cache::RefreshLock;
use crate::cache::refresh::{Clock, SystemClock};
use crate::config::Resolved;
use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::source::Source;
use crate::{pgpass, report};

/// Writes this connection's pgpass line; with `watch`, keeps rewriting it
/// before each password expires until the process is stopped. Unless
/// `quiet`, says on stderr what it wrote and when the next refresh is due
/// (one line per write; never the password).
pub fn pgpass(r: &Resolved, watch: bool, quiet: bool, source: &dyn Source) -> Result<(), Error> {
    let path = pgpass::default_path()
        .ok_or_else(|| Error::Usage("no home directory for ~/.pgpass: set PGPASSFILE".into()))?;
    let endpoint = endpoint(r, source)?;
    let mut written: Option<String> = None;
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
        if written.as_deref() != Some(credential.expose_password()) {
            write_pgpass_line(r, &path, &endpoint, &credential)?;
            written = Some(credential.expose_password().to_string());
            if !quiet {
                let now = Clock::now(&SystemClock);
                report::note(&written_note(r, &path, &endpoint, &credential, watch, now));
            }
        }
        if !watch {
            if let Some(note) = &r.connection.tls.note {
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

fn write_pgpass_line(
    r: &Resolved,
    path: &std::path::Path,
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
    // Serialize writers of the same file so no update is lost.
    let _lock = match &r.settings.cache_dir {
        Some(dir) => {
            RefreshLock::acquire_named(dir, &pgpass_lock_name(path), r.settings.lock_timeout)?.ok()
        }
        None => None,
    };
    let old = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(Error::File {
                action: "read the pgpass file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let new = zeroize::Zeroizing::new(pgpass::upsert(&old, &line));
    pgpass::write_atomically(path, &new).map_err(|source| Error::File {
        action: "write the pgpass file",
        path: path.to_path_buf(),
        source,
    })
}

/// The lock name for a pgpass file: a hash of its path, so the path itself
/// appears in no file name.
fn pgpass_lock_name(path: &std::path::Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("pgpass-{hex}")
}

#[cfg(test)]
mod tests {
    use super::watch_wait;

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
