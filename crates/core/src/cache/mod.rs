//! The credential cache: which store holds entries, falling back from keyring to file, and the refresh lock.

pub mod entry;
pub mod failure;
mod file;
pub mod key;
mod keyring;
#[cfg(target_os = "linux")]
mod keyutils;
mod lock;
pub mod mode;
pub mod refresh;
#[cfg(target_os = "linux")]
mod secret_service;

use crate::error::Error;
use crate::private_fs::SafeDir;
use crate::report;
use entry::Stored;
use failure::RefreshFailure;
use file::FileStore;
use key::CacheKey;
use keyring::KeyringStore;
pub use lock::RefreshLock;
use mode::CacheMode;
use refresh::EntryCache;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// What a store found under a key.
pub enum Load {
    /// Nothing stored.
    Missing,
    /// The raw entry, still to be decoded.
    Found(Zeroizing<Vec<u8>>),
    /// Something is there but cannot be read: a miss.
    Unreadable(String),
    /// Something is there but must not be trusted (others can read it): a
    /// miss, with a warning.
    Refused(String),
}

/// The store itself cannot be used (as opposed to one bad entry).
#[derive(Debug)]
pub struct StoreError(pub String);

/// Where entries live. `None` is a real mode: nothing is read or written.
#[derive(Debug)]
pub enum Store {
    /// The OS keyring.
    Keyring(KeyringStore),
    /// Files in the private cache directory.
    File(FileStore),
    /// No cache.
    None,
}

impl Store {
    /// A short name for messages and `list`.
    pub fn name(&self) -> String {
        match self {
            Store::Keyring(k) => format!("keyring ({})", k.backend().name()),
            Store::File(_) => "file".to_string(),
            Store::None => "none".to_string(),
        }
    }
}

/// The cache for one key: its store, the mode the user chose, and where the
/// lock lives. Under `auto`, a keyring that refuses is replaced by the file
/// store, and an unusable file store or lock directory by no cache, each with
/// one warning.
#[derive(Debug)]
pub struct Cache {
    mode: CacheMode,
    key: CacheKey,
    dir: Option<PathBuf>,
    /// The cache directory, checked and held open once it is first needed
    /// (a keyring hit never opens it).
    handle: Option<Arc<SafeDir>>,
    store: Store,
    lock_timeout: Duration,
    label: Option<String>,
}

/// What `list` knows of an entry, kept beside it as `<key>.meta` in the cache
/// directory. It holds no secret: the password stays in its store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// The cache key (the file names carry it too).
    pub key: String,
    /// The connection name, or the cluster or workgroup.
    pub label: String,
    /// "password" or "endpoint".
    pub kind: String,
    /// The database user, or the endpoint's address.
    pub shown_as: String,
    /// Expiry, in seconds since the Unix epoch.
    pub expiration: i64,
    /// Which store holds it.
    pub store: String,
}

impl Cache {
    /// Opens the store `mode` asks for. A store the user demanded by name
    /// that cannot be used is [`Error::CacheUnavailable`].
    pub fn open(
        mode: CacheMode,
        key: CacheKey,
        dir: Option<PathBuf>,
        lock_timeout: Duration,
    ) -> Result<Cache, Error> {
        let mut cache = Cache {
            mode,
            key,
            dir,
            handle: None,
            store: Store::None,
            lock_timeout,
            label: None,
        };
        cache.store = match mode {
            CacheMode::None => Store::None,
            CacheMode::File => {
                Store::File(
                    cache
                        .open_file()
                        .map_err(|reason| Error::CacheUnavailable {
                            mode: "file",
                            reason,
                        })?,
                )
            }
            CacheMode::Keyring => Store::Keyring(
                KeyringStore::open(&cache.key, cache.dir.as_deref()).map_err(|reason| {
                    Error::CacheUnavailable {
                        mode: "keyring",
                        reason,
                    }
                })?,
            ),
            CacheMode::Auto => match KeyringStore::open(&cache.key, cache.dir.as_deref()) {
                Ok(k) => Store::Keyring(k),
                Err(why) => cache.fall_back_to_file(&format!("no OS keyring can be used ({why})")),
            },
        };
        tracing::debug!(store = %cache.store.name(), key = %cache.key, "cache opened");
        Ok(cache)
    }

    /// The store in use.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Names the entry for `list` (the connection, cluster or workgroup).
    pub fn set_label(&mut self, request: &crate::config::Request) {
        self.label = Some(request.label());
    }

    /// Names the entry for `list` and `clear` when it is no password request
    /// (an Identity Center sign-in: its connection or issuer URL).
    pub fn set_label_text(&mut self, label: &str) {
        self.label = Some(label.to_string());
    }

    /// Writes the `list` record beside a saved entry. Best effort: `list`
    /// is a convenience, and a failure here must not fail the run.
    fn write_meta<T: Stored>(&mut self, entry: &T) {
        let Some(label) = &self.label else {
            return;
        };
        let meta = Meta {
            key: self.key.to_string(),
            label: label.clone(),
            kind: T::NOUN.to_string(),
            shown_as: entry.shown_as(),
            expiration: entry.expiration(),
            store: self.store.name(),
        };
        let bytes = serde_json::to_vec(&meta).expect("meta always serializes");
        // Relative to the held directory, and never through a symlink.
        let written = self
            .dir_handle()
            .map_err(std::io::Error::other)
            .and_then(|d| d.write_atomically(&format!("{}.meta", self.key), &bytes));
        if let Err(e) = written {
            tracing::debug!(error = %e, "cannot write the list record");
        }
    }

    /// The cache directory, checked (ours, private) and opened once.
    fn dir_handle(&mut self) -> Result<Arc<SafeDir>, String> {
        if let Some(h) = &self.handle {
            return Ok(h.clone());
        }
        let dir = self.dir.as_ref().ok_or_else(|| {
            "no cache directory is known; set REDSHIFT_CREDS_CACHE_DIR".to_string()
        })?;
        let h = Arc::new(SafeDir::ensure_private(dir)?);
        self.handle = Some(h.clone());
        Ok(h)
    }

    /// The refresh-ahead marker of this key, if this process is the one to
    /// start its background refresh: `Ok(None)` when one is running already.
    /// An error when there is no cache or the marker cannot be made.
    pub fn ahead_marker(&mut self) -> Result<Option<std::fs::File>, String> {
        if matches!(self.store, Store::None) {
            return Err("no cache".into());
        }
        let dir = self.dir_handle()?;
        lock::try_ahead_marker(&dir, &self.key).map_err(|e| e.to_string())
    }

    /// The record of a failed refresh of the entry that expires at
    /// `expiration`, if there is one (one small read; no lock).
    pub fn refresh_failure(&mut self, expiration: i64) -> Option<RefreshFailure> {
        if matches!(self.store, Store::None) {
            return None;
        }
        let dir = self.dir_handle().ok()?;
        let bytes = dir.read_record(&RefreshFailure::name(&self.key), failure::MAX_LEN)?;
        RefreshFailure::decode(&bytes).filter(|f| f.expiration == expiration)
    }

    /// Removes the record of a failed refresh: the entry was replaced.
    fn forget_failure(&mut self) {
        if let Ok(dir) = self.dir_handle() {
            let _ = dir.remove(&RefreshFailure::name(&self.key));
        }
    }

    fn open_file(&mut self) -> Result<FileStore, String> {
        self.dir_handle().map(FileStore::new)
    }

    fn fall_back_to_file(&mut self, why: &str) -> Store {
        match self.open_file() {
            Ok(f) => {
                let dir = self
                    .dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                report::warn(&format!(
                    "{why}; caching in private files under {dir} instead"
                ));
                Store::File(f)
            }
            Err(file_why) => {
                report::warn(&format!("{why}, and {file_why}; running without a cache"));
                Store::None
            }
        }
    }

    /// Handles a store that failed mid-run: under `auto` a keyring gives way
    /// to the file store and a file store to no cache; a store the user
    /// demanded is an error.
    fn demote(&mut self, failure: StoreError) -> Result<(), Error> {
        self.check_not_demanded(&failure)?;
        self.store = match self.store {
            Store::Keyring(ref k) => {
                let why = format!("the {} keyring refused ({})", k.backend().name(), failure.0);
                self.fall_back_to_file(&why)
            }
            _ => {
                report::warn(&format!("{}; running without a cache", failure.0));
                Store::None
            }
        };
        Ok(())
    }

    /// Drops to no cache at all (under `auto`), or fails (a demanded store).
    fn give_up(&mut self, failure: StoreError) -> Result<(), Error> {
        self.check_not_demanded(&failure)?;
        report::warn(&format!("{}; running without a cache", failure.0));
        self.store = Store::None;
        Ok(())
    }

    fn check_not_demanded(&self, failure: &StoreError) -> Result<(), Error> {
        let mode = match self.mode {
            CacheMode::Keyring => "keyring",
            CacheMode::File => "file",
            CacheMode::Auto | CacheMode::None => return Ok(()),
        };
        Err(Error::CacheUnavailable {
            mode,
            reason: failure.0.clone(),
        })
    }

    fn decode<T: Stored>(&self, loaded: Load) -> Option<T> {
        match loaded {
            Load::Missing => None,
            Load::Found(bytes) => match T::decode(&bytes, &self.key) {
                Ok(c) => Some(c),
                Err(rejected) => {
                    tracing::debug!(%rejected, "cache entry ignored");
                    None
                }
            },
            Load::Unreadable(why) => {
                tracing::debug!(%why, "cache entry ignored");
                None
            }
            Load::Refused(why) => {
                report::warn(&why);
                None
            }
        }
    }
}

impl<T: Stored + 'static> EntryCache<T> for Cache {
    fn load(&mut self) -> Result<Option<T>, Error> {
        loop {
            let key = self.key.clone();
            let loaded = match &self.store {
                Store::None => return Ok(None),
                Store::File(f) => f.load(&self.key),
                Store::Keyring(k) => k.load(move |b| T::decode(b, &key).is_ok()),
            };
            match loaded {
                Ok(l) => return Ok(self.decode(l)),
                Err(failure) => self.demote(failure)?,
            }
        }
    }

    fn lock(&mut self) -> Result<Option<RefreshLock>, Error> {
        if matches!(self.store, Store::None) {
            return Ok(None);
        }
        let got = if self.dir.is_none() {
            Err("no lock directory is known; set REDSHIFT_CREDS_CACHE_DIR".to_string())
        } else {
            match self.dir_handle() {
                Ok(dir) => RefreshLock::acquire(&dir, &self.key, self.lock_timeout)?,
                Err(why) => Err(why),
            }
        };
        match got {
            Ok(lock) => Ok(Some(lock)),
            Err(why) => {
                self.give_up(StoreError(format!("cannot take the refresh lock: {why}")))?;
                Ok(None)
            }
        }
    }

    fn save(&mut self, entry: &T) -> Result<(), Error> {
        let bytes = entry.encode(&self.key);
        loop {
            let saved = match &self.store {
                Store::None => return Ok(()),
                Store::File(f) => f.save(&self.key, &bytes),
                Store::Keyring(k) => k.save(&bytes, entry.expiration()),
            };
            match saved {
                Ok(()) => {
                    self.write_meta(entry);
                    self.forget_failure();
                    return Ok(());
                }
                // The entry was paid for with an API call and is valid: a
                // store the user demanded that refuses only now (it answered
                // the read before the call) costs the cache, not the entry.
                Err(failure) if self.check_not_demanded(&failure).is_err() => {
                    report::warn(&format!(
                        "the {} cache refused to store the new entry ({}); it was not cached",
                        self.store.name(),
                        failure.0
                    ));
                    return Ok(());
                }
                Err(failure) => self.demote(failure)?,
            }
        }
    }

    fn note_failure(&mut self, expiration: i64, at: i64, reason: &str) {
        if matches!(self.store, Store::None) {
            return;
        }
        let record = RefreshFailure::new(expiration, at, reason).encode();
        let written = self
            .dir_handle()
            .map_err(std::io::Error::other)
            .and_then(|d| d.write_atomically(&RefreshFailure::name(&self.key), &record));
        if let Err(e) = written {
            tracing::debug!(error = %e, "cannot record the failed refresh");
        }
    }
}

/// The most a `list` record may hold; a bigger one is skipped.
const MAX_META_LEN: u64 = 64 * 1024;

/// The `list` records in a (checked, open) cache directory, oldest expiry
/// first. Unreadable records, and anything that is not a small regular file
/// of ours (a symlink, a FIFO), are skipped without blocking.
pub fn list(dir: &SafeDir) -> Vec<Meta> {
    let mut out: Vec<Meta> = dir
        .names()
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.ends_with(".meta"))
        .filter_map(|name| dir.read_record(&name, MAX_META_LEN))
        .filter_map(|b| serde_json::from_slice::<Meta>(&b).ok())
        .filter(|m| key::CacheKey::parse(&m.key).is_some())
        .collect();
    out.sort_by(|a, b| (&a.label, a.expiration).cmp(&(&b.label, b.expiration)));
    out
}

/// What removing one key's entry did.
#[derive(Debug, Default)]
pub struct Removal {
    /// The stores that held a copy and no longer do.
    pub from: Vec<String>,
    /// The stores where a copy may survive, and why.
    pub failed: Vec<String>,
}

/// Removes one key's entry from every store that may hold it (each OS
/// keyring this machine offers, whatever `--cache` says, and the file
/// store), checks that it is gone, and only then removes its `list` record.
pub fn remove(dir: Option<&SafeDir>, key: &key::CacheKey) -> Removal {
    let mut done = Removal::default();
    for backend in keyring::every_backend() {
        let name = format!("keyring ({})", backend.name());
        match KeyringStore::open_backend(key, dir.map(SafeDir::path), backend) {
            Ok(k) => match k.delete() {
                Ok(true) => done.from.push(name),
                Ok(false) => {}
                Err(e) => done.failed.push(format!("{name}: {}", e.0)),
            },
            // A keyring this process cannot open holds nothing it could read.
            Err(why) => tracing::debug!(%why, "keyring not visited"),
        }
    }
    if let Some(dir) = dir {
        let entry = format!("{key}.json");
        if dir.remove(&entry).is_ok() {
            done.from.push("file".to_string());
        }
        if dir.names().is_ok_and(|names| names.contains(&entry)) {
            done.failed
                .push("file: the entry is still there".to_string());
        }
        if done.failed.is_empty() {
            let _ = dir.remove(&format!("{key}.meta"));
            let _ = dir.remove(&RefreshFailure::name(key));
        }
    }
    done
}

/// A key no entry can have: for `doctor`'s probe, unique per run, so a
/// probe that could not be removed never poisons a later one.
fn probe_key() -> key::CacheKey {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = sha2::Sha256::digest(format!("doctor probe {} {nanos}", std::process::id()));
    key::CacheKey::parse(&hex::encode(&digest[..20])).expect("40 hex digits are a key")
}

/// Says which store `--cache auto` would use here, and why: a keyring is
/// tried for real (write, read back, delete a probe entry under a key unique
/// to this run), since some keyrings open fine and refuse only on write.
/// The probe entry is always removed, and has a one-minute lifetime anyway.
/// `Ok` names the keyring that works; `Err` says what `auto` falls back to, and why.
pub fn probe_auto(dir: Option<&std::path::Path>) -> Result<String, String> {
    const PROBE: &[u8] = b"redshift-creds doctor probe";
    let fallback = match dir {
        Some(d) => format!("the file store in {}", d.display()),
        None => "no cache (no directory is known)".to_string(),
    };
    let key = probe_key();
    match KeyringStore::open(&key, dir) {
        Ok(k) => {
            let name = k.backend().name();
            let expires = refresh::Clock::now(&refresh::SystemClock) + 60;
            let tried = k.save(PROBE, expires).and_then(|()| k.load(|b| b == PROBE));
            let removed = k.delete();
            match (tried, removed) {
                (Ok(Load::Found(b)), Ok(true)) if &b[..] == PROBE => {
                    Ok(format!("keyring ({name})"))
                }
                (Ok(Load::Found(_)), _) => Err(format!(
                    "{fallback}, because the {name} keyring could not delete its probe entry"
                )),
                (Ok(_), _) => Err(format!(
                    "{fallback}, because the {name} keyring did not return what was written"
                )),
                (Err(e), _) => Err(format!(
                    "{fallback}, because the {name} keyring refused: {}",
                    e.0
                )),
            }
        }
        Err(why) => Err(format!(
            "{fallback}, because no OS keyring can be used: {why}"
        )),
    }
}
