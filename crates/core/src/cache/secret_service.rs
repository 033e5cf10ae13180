//! The freedesktop Secret Service: entries as items of the default collection carrying `application=redshift-creds`, the call deadline, and the marker that remembers a Secret Service that did not answer.
//!
//! Items are looked up in the default collection only, and only by the
//! tool's own attributes, so an item another application files under
//! `service=redshift-creds` in some other collection is never served. When
//! several items match (an older run, a race), the newest one that decodes is
//! kept and the others are deleted, so a duplicate never disables the cache.

use super::key::{CacheKey, SERVICE};
use dbus_secret_service::{Collection, EncryptionType, Item, SecretService};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// The attribute that marks an item as ours.
pub const APPLICATION: &str = "redshift-creds";
/// The attribute holding the cache key.
pub const KEY_ATTRIBUTE: &str = "redshift-creds-key";

/// How long a Secret Service call may take before it counts as unanswered.
/// A locked collection can otherwise wait forever on a prompt.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// How long a Secret Service that did not answer is left alone: later runs
/// go straight to the next store instead of paying the deadline again.
pub const UNANSWERED_TTL: Duration = Duration::from_secs(600);

/// The marker, in the cache directory, that says the Secret Service did not
/// answer. It holds no secret; its age is its meaning.
pub const UNANSWERED_MARKER: &str = "secret-service.unanswered";

/// Why a Secret Service call failed.
#[derive(Debug)]
pub enum Failure {
    /// No answer: D-Bus `NoReply`, or nothing within [`CALL_DEADLINE`]. The
    /// keyring store remembers it in the marker and skips the Secret Service.
    Unanswered(String),
    /// Any other refusal.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unanswered(why) | Failure::Other(why) => f.write_str(why),
        }
    }
}

fn why(e: dbus_secret_service::Error) -> Failure {
    match e {
        dbus_secret_service::Error::Dbus(d)
            if d.name() == Some("org.freedesktop.DBus.Error.NoReply") =>
        {
            Failure::Unanswered("the Secret Service did not answer (no D-Bus reply)".into())
        }
        // Never print a crypto error's payload.
        dbus_secret_service::Error::Crypto(_) => {
            Failure::Other("the session encryption failed".into())
        }
        other => Failure::Other(other.to_string()),
    }
}

fn ours(key: &CacheKey) -> HashMap<&str, &str> {
    HashMap::from([
        ("application", APPLICATION),
        (KEY_ATTRIBUTE, key.as_str()),
        // Kept so `secret-tool clear service redshift-creds` removes them.
        ("service", SERVICE),
        ("username", key.as_str()),
    ])
}

fn lookup(key: &CacheKey) -> HashMap<&str, &str> {
    HashMap::from([("application", APPLICATION), (KEY_ATTRIBUTE, key.as_str())])
}

/// Connects to the Secret Service (opens an encrypted session).
pub fn connect() -> Result<SecretService, Failure> {
    SecretService::connect(EncryptionType::Dh).map_err(why)
}

/// Whether the default collection can be found within the deadline: a bus
/// name that is owned but never answers shows here, not at the first read.
pub fn probe() -> Result<(), Failure> {
    with_deadline(|| {
        let ss = connect()?;
        ss.get_default_collection().map(|_| ()).map_err(why)
    })
    .unwrap_or_else(|| Err(unanswered()))
}

/// Runs a Secret Service call with the deadline, since a locked collection
/// or a hung daemon would otherwise block forever. A call that gets no
/// answer is remembered in the marker under `dir`.
pub fn call<T: Send + 'static>(
    dir: Option<&Path>,
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, String> {
    with_deadline(f)
        .unwrap_or_else(|| Err(unanswered()))
        .map_err(|failure| {
            if let Failure::Unanswered(why) = &failure {
                remember_unanswered(dir, why);
            }
            failure.to_string()
        })
}

/// The matching items of the default collection, newest first.
fn items<'a>(collection: &'a Collection<'a>, key: &CacheKey) -> Result<Vec<Item<'a>>, Failure> {
    let mut found: Vec<(u64, Item<'a>)> = collection
        .search_items(lookup(key))
        .map_err(why)?
        .into_iter()
        .map(|i| (i.get_modified().unwrap_or(0), i))
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found.into_iter().map(|(_, i)| i).collect())
}

/// Reads the newest entry that `valid` accepts and deletes every other
/// match. `None` when nothing valid is there.
pub fn load(
    key: &CacheKey,
    valid: &dyn Fn(&[u8]) -> bool,
) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    let ss = connect()?;
    let collection = ss.get_default_collection().map_err(why)?;
    let mut kept: Option<Zeroizing<Vec<u8>>> = None;
    for item in items(&collection, key)? {
        if kept.is_some() {
            if let Err(e) = item.delete() {
                tracing::debug!(error = %why(e), "cannot delete a duplicate item");
            }
            continue;
        }
        if item.is_locked().map_err(why)? {
            item.unlock().map_err(why)?;
        }
        let secret = Zeroizing::new(item.get_secret().map_err(why)?);
        if valid(&secret) {
            kept = Some(secret);
        } else if let Err(e) = item.delete() {
            tracing::debug!(error = %why(e), "cannot delete an invalid item");
        }
    }
    Ok(kept)
}

/// Creates or replaces the entry in the default collection.
pub fn save(key: &CacheKey, bytes: &[u8]) -> Result<(), Failure> {
    let ss = connect()?;
    let collection = ss.get_default_collection().map_err(why)?;
    if collection.is_locked().map_err(why)? {
        collection.unlock().map_err(why)?;
    }
    let label = format!("redshift-creds cache entry {key}");
    let created = collection
        .create_item(&label, ours(key), bytes, true, "text/plain")
        .map_err(why)?;
    // `replace` covers items with exactly our attributes; other matches
    // (duplicates) go now rather than on the next read.
    for item in items(&collection, key)? {
        if !item.equal_to(&created).unwrap_or(true) {
            let _ = item.delete();
        }
    }
    Ok(())
}

/// Deletes every matching item; `Ok(false)` when there was none. Checks
/// that they are gone.
pub fn delete(key: &CacheKey) -> Result<bool, Failure> {
    let ss = connect()?;
    let collection = ss.get_default_collection().map_err(why)?;
    let found = items(&collection, key)?;
    let any = !found.is_empty();
    for item in found {
        item.delete().map_err(why)?;
    }
    if !items(&collection, key)?.is_empty() {
        return Err(Failure::Other("an item survived deletion".into()));
    }
    Ok(any)
}

fn unanswered() -> Failure {
    Failure::Unanswered(format!(
        "the Secret Service did not answer within {} s (is the collection locked?)",
        CALL_DEADLINE.as_secs()
    ))
}

fn with_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(CALL_DEADLINE).ok()
}

/// Whether the marker under `dir` says the Secret Service did not answer
/// less than [`UNANSWERED_TTL`] ago.
pub fn recently_unanswered(dir: Option<&Path>) -> bool {
    let Some(dir) = dir else { return false };
    let Ok(meta) = std::fs::symlink_metadata(dir.join(UNANSWERED_MARKER)) else {
        return false;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| std::time::SystemTime::now().duration_since(m).ok());
    meta.is_file() && age.is_some_and(|a| a < UNANSWERED_TTL)
}

/// Notes, in the marker under `dir`, that the Secret Service did not answer,
/// and says so once per [`UNANSWERED_TTL`]. The marker holds `1` once the
/// warning was printed. The front (whose warnings are held, and dropped on a
/// hand-over) writes `0` and stays quiet; the next full run that finds `0`
/// says it.
pub fn remember_unanswered(dir: Option<&Path>, why: &str) {
    if recently_unanswered(dir) {
        return;
    }
    write_marker(dir, why);
}

fn write_marker(dir: Option<&Path>, why: &str) {
    let warn = !crate::report::held();
    // The directory is made private (and created) first, as for any entry.
    let written = dir.map(|d| {
        crate::private_fs::SafeDir::ensure_private(d).and_then(|d| {
            d.write_atomically(UNANSWERED_MARKER, if warn { b"1" } else { b"0" })
                .map_err(|e| e.to_string())
        })
    });
    if let Some(Err(e)) = written {
        tracing::debug!(error = %e, "cannot write the Secret Service marker");
    }
    if warn {
        crate::report::warn(&format!(
            "{why}; not asking the Secret Service again for {} minutes",
            UNANSWERED_TTL.as_secs() / 60
        ));
    }
}

/// A fresh marker whose warning was never printed: print it now (unless
/// this is the front).
pub fn warn_if_unwarned(dir: Option<&Path>) {
    // Read as every record in the cache directory is: a small regular file
    // of ours, never through a symlink or from a FIFO.
    let unwarned = dir
        .and_then(|d| {
            crate::private_fs::SafeDir::open_private_existing(d)
                .ok()
                .flatten()
        })
        .and_then(|d| d.read_record(UNANSWERED_MARKER, 16))
        .is_some_and(|b| b.as_slice() == b"0");
    if unwarned && !crate::report::held() {
        write_marker(dir, "the Secret Service did not answer");
    }
}
