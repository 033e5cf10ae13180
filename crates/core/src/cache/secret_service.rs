//! The freedesktop Secret Service: entries as items of the default collection carrying `application=redshift-creds`.
//!
//! Items are looked up in the default collection only, and only by the
//! tool's own attributes, so an item another application files under
//! `service=redshift-creds` in some other collection is never served. When
//! several items match (an older run, a race), the newest one that decodes is
//! kept and the others are deleted, so a duplicate never disables the cache.

use super::key::CacheKey;
use dbus_secret_service::{Collection, EncryptionType, Item, SecretService};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// The attribute that marks an item as ours.
pub const APPLICATION: &str = "redshift-creds";
/// The attribute holding the cache key.
pub const KEY_ATTRIBUTE: &str = "redshift-creds-key";

/// How a call the Secret Service never answered (D-Bus `NoReply`) is worded;
/// the keyring store remembers such a refusal.
pub const NO_REPLY: &str = "the Secret Service did not answer";

fn why(e: dbus_secret_service::Error) -> String {
    match e {
        dbus_secret_service::Error::Dbus(d)
            if d.name() == Some("org.freedesktop.DBus.Error.NoReply") =>
        {
            format!("{NO_REPLY} (no D-Bus reply)")
        }
        // Never print a crypto error's payload.
        dbus_secret_service::Error::Crypto(_) => "the session encryption failed".into(),
        other => other.to_string(),
    }
}

fn ours(key: &CacheKey) -> HashMap<&str, &str> {
    HashMap::from([
        ("application", APPLICATION),
        (KEY_ATTRIBUTE, key.as_str()),
        // Kept so `secret-tool clear service redshift-creds` removes them.
        ("service", super::keyring::SERVICE),
        ("username", key.as_str()),
    ])
}

fn lookup(key: &CacheKey) -> HashMap<&str, &str> {
    HashMap::from([("application", APPLICATION), (KEY_ATTRIBUTE, key.as_str())])
}

/// Connects to the Secret Service (opens an encrypted session).
pub fn connect() -> Result<SecretService, String> {
    SecretService::connect(EncryptionType::Dh).map_err(why)
}

/// Whether the default collection can be found (the first call that needs
/// the daemon to answer).
pub fn default_collection_answers(ss: &SecretService) -> Result<(), String> {
    ss.get_default_collection().map(|_| ()).map_err(why)
}

/// The matching items of the default collection, newest first.
fn items<'a>(collection: &'a Collection<'a>, key: &CacheKey) -> Result<Vec<Item<'a>>, String> {
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
) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
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
pub fn save(key: &CacheKey, bytes: &[u8]) -> Result<(), String> {
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
pub fn delete(key: &CacheKey) -> Result<bool, String> {
    let ss = connect()?;
    let collection = ss.get_default_collection().map_err(why)?;
    let found = items(&collection, key)?;
    let any = !found.is_empty();
    for item in found {
        item.delete().map_err(why)?;
    }
    if !items(&collection, key)?.is_empty() {
        return Err("an item survived deletion".into());
    }
    Ok(any)
}
