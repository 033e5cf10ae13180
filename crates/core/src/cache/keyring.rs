//! The OS keyring store: Secret Service or kernel keyutils on Linux, Keychain, Credential Manager.

use super::key::CacheKey;
use super::{Load, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// The keyring service name every entry is filed under; the user is the cache key.
pub const SERVICE: &str = "redshift-creds";

/// How long a keyring call may take before the keyring counts as refusing.
/// A locked Secret Service collection can otherwise wait forever on a prompt.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// How long a Secret Service that did not answer is left alone: later runs
/// go straight to the next store instead of paying the deadline again.
pub const UNANSWERED_TTL: Duration = Duration::from_secs(600);

/// The marker, in the cache directory, that says the Secret Service did not
/// answer. It holds no secret; its age is its meaning.
pub const UNANSWERED_MARKER: &str = "secret-service.unanswered";

/// Which keyring backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    SecretService,
    /// The Linux kernel key retention service, in the user's persistent keyring.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Keyutils,
    /// The macOS login Keychain.
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    Keychain,
    /// The Windows Credential Manager.
    #[cfg_attr(not(target_os = "windows"), allow(dead_code))]
    CredentialManager,
}

impl Backend {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "Secret Service",
            Backend::Keyutils => "kernel keyutils",
            Backend::Keychain => "macOS Keychain",
            Backend::CredentialManager => "Windows Credential Manager",
        }
    }
}

/// What a [`KeyringStore`] talks to.
enum Inner {
    #[cfg(target_os = "linux")]
    SecretService,
    #[cfg(target_os = "linux")]
    Keyutils(super::keyutils::Keyutils),
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    Core(std::sync::Arc<keyring_core::Entry>),
}

/// One key's entry in the OS keyring.
pub struct KeyringStore {
    backend: Backend,
    key: CacheKey,
    inner: Inner,
    /// Where to note that the Secret Service did not answer.
    marker: Option<PathBuf>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("backend", &self.backend)
            .finish()
    }
}

impl KeyringStore {
    /// Opens the platform keyring for `key`: on Linux the Secret Service when
    /// a session bus answers, else kernel keyutils. Returns why when no
    /// keyring can be used, naming each one that refused. `dir` is the cache
    /// directory, where a Secret Service that did not answer is remembered.
    pub fn open(key: &CacheKey, dir: Option<&Path>) -> Result<KeyringStore, String> {
        Self::open_among(key, dir, &candidates(dir))
    }

    /// Opens one given backend (for `clear`, which visits every store).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn open_backend(
        key: &CacheKey,
        dir: Option<&Path>,
        backend: Backend,
    ) -> Result<KeyringStore, String> {
        Self::open_among(key, dir, &[backend])
    }

    fn open_among(
        key: &CacheKey,
        dir: Option<&Path>,
        backends: &[Backend],
    ) -> Result<KeyringStore, String> {
        let marker = dir.map(|d| d.join(UNANSWERED_MARKER));
        let mut refusals = Vec::new();
        for &backend in backends {
            match open_backend(backend, key) {
                Ok(inner) => {
                    return Ok(KeyringStore {
                        backend,
                        key: key.clone(),
                        inner,
                        marker,
                    });
                }
                Err(Refusal::Unanswered(why)) => {
                    remember_unanswered(marker.as_deref(), &why);
                    refusals.push(format!("{}: {why}", backend.name()));
                }
                Err(Refusal::Other(why)) => {
                    tracing::debug!(backend = backend.name(), %why, "keyring refused");
                    refusals.push(format!("{}: {why}", backend.name()));
                }
            }
        }
        if refusals.is_empty() {
            refusals.push("no keyring is supported on this platform".to_string());
        }
        Err(refusals.join("; "))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reads the raw entry. `valid` says whether bytes decode to an entry:
    /// where several items match (the Secret Service), the newest valid one
    /// is returned and the rest deleted.
    pub fn load(&self, valid: impl Fn(&[u8]) -> bool + Send + 'static) -> Result<Load, StoreError> {
        let key = self.key.clone();
        let got = match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::SecretService => {
                self.noted(self.call(move || super::secret_service::load(&key, &valid))?)
            }
            #[cfg(target_os = "linux")]
            Inner::Keyutils(k) => k.load(&key),
            #[cfg(any(target_os = "macos", target_os = "windows"))]
            Inner::Core(entry) => {
                let _ = valid;
                return core_load(entry);
            }
        };
        match got {
            Ok(Some(bytes)) => Ok(Load::Found(bytes)),
            Ok(None) => Ok(Load::Missing),
            Err(why) => Err(StoreError(why)),
        }
    }

    /// Replaces the entry, which expires at `expires` (Unix seconds).
    /// Keyrings replace an item in one call, so readers see the old value or
    /// the new one.
    pub fn save(&self, bytes: &[u8], expires: i64) -> Result<(), StoreError> {
        let key = self.key.clone();
        let bytes = Zeroizing::new(bytes.to_vec());
        let done = match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::SecretService => {
                self.noted(self.call(move || super::secret_service::save(&key, &bytes))?)
            }
            #[cfg(target_os = "linux")]
            Inner::Keyutils(k) => k.save(&key, &bytes, expires),
            #[cfg(any(target_os = "macos", target_os = "windows"))]
            Inner::Core(entry) => {
                let _ = (key, expires);
                core_save(entry, &bytes)
            }
        };
        done.map_err(StoreError)
    }

    /// Deletes the entry (every copy of it); `Ok(false)` when there was none.
    pub fn delete(&self) -> Result<bool, StoreError> {
        let key = self.key.clone();
        let done = match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::SecretService => {
                self.noted(self.call(move || super::secret_service::delete(&key))?)
            }
            #[cfg(target_os = "linux")]
            Inner::Keyutils(k) => k.delete(&key),
            #[cfg(any(target_os = "macos", target_os = "windows"))]
            Inner::Core(entry) => {
                let _ = key;
                core_delete(entry)
            }
        };
        done.map_err(StoreError)
    }

    /// Runs a Secret Service call with a deadline, since a locked collection
    /// or a hung daemon would otherwise block forever. A call that misses it
    /// is remembered in the marker.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        with_deadline(f).ok_or_else(|| {
            let why = unanswered();
            remember_unanswered(self.marker.as_deref(), &why);
            StoreError(why)
        })
    }

    /// Remembers a Secret Service call that got no D-Bus reply.
    #[cfg(target_os = "linux")]
    fn noted<T>(&self, r: Result<T, String>) -> Result<T, String> {
        if let Err(why) = &r
            && why.starts_with(super::secret_service::NO_REPLY)
        {
            remember_unanswered(self.marker.as_deref(), why);
        }
        r
    }
}

fn unanswered() -> String {
    format!(
        "the Secret Service did not answer within {} s (is the collection locked?)",
        CALL_DEADLINE.as_secs()
    )
}

/// Whether the marker says the Secret Service did not answer less than
/// [`UNANSWERED_TTL`] ago.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn recently_unanswered(dir: Option<&Path>) -> bool {
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

/// Notes that the Secret Service did not answer, and says so once per
/// [`UNANSWERED_TTL`]. The marker holds `1` once the warning was printed.
/// The front (whose warnings are held, and dropped on a hand-over) writes
/// `0` and stays quiet; the next full run that finds `0` says it.
fn remember_unanswered(marker: Option<&Path>, why: &str) {
    if marker.is_some_and(|m| recently_unanswered(m.parent())) {
        return;
    }
    write_marker(marker, why);
}

fn write_marker(marker: Option<&Path>, why: &str) {
    let warn = !crate::report::held();
    // The directory is made private (and created) first, as for any entry.
    let written = marker.map(|m| {
        let (Some(dir), Some(name)) = (m.parent(), m.file_name().and_then(|n| n.to_str())) else {
            return Err("the marker has no directory".to_string());
        };
        crate::private_fs::SafeDir::ensure_private(dir).and_then(|d| {
            d.write_atomically(name, if warn { b"1" } else { b"0" })
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
#[cfg(target_os = "linux")]
fn warn_if_unwarned(dir: Option<&Path>) {
    let Some(m) = dir.map(|d| d.join(UNANSWERED_MARKER)) else {
        return;
    };
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
        write_marker(Some(&m), super::secret_service::NO_REPLY);
    }
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

/// Why a backend could not be opened.
enum Refusal {
    /// It did not answer within the deadline: remembered.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Unanswered(String),
    Other(String),
}

fn open_backend(backend: Backend, key: &CacheKey) -> Result<Inner, Refusal> {
    let _ = key;
    match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => {
            // Ask for the default collection: a bus name that is owned but
            // never answers shows here, not at the first read.
            let answered = with_deadline(|| {
                let ss = super::secret_service::connect()?;
                super::secret_service::default_collection_answers(&ss)
            });
            match answered {
                None => Err(Refusal::Unanswered(unanswered())),
                Some(Err(why)) if why.starts_with(super::secret_service::NO_REPLY) => {
                    Err(Refusal::Unanswered(why))
                }
                Some(Err(why)) => Err(Refusal::Other(why)),
                Some(Ok(())) => Ok(Inner::SecretService),
            }
        }
        #[cfg(target_os = "linux")]
        Backend::Keyutils => super::keyutils::Keyutils::open()
            .map(Inner::Keyutils)
            .map_err(Refusal::Other),
        #[cfg(target_os = "macos")]
        Backend::Keychain => {
            let store = apple_native_keyring_store::keychain::Store::new()
                .map_err(|e| Refusal::Other(e.to_string()))?;
            core_entry(&store, key)
        }
        #[cfg(target_os = "windows")]
        Backend::CredentialManager => {
            let store = windows_native_keyring_store::Store::new()
                .map_err(|e| Refusal::Other(e.to_string()))?;
            core_entry(&store, key)
        }
        #[allow(unreachable_patterns)]
        _ => Err(Refusal::Other("not supported on this platform".into())),
    }
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
fn core_entry(
    store: &std::sync::Arc<keyring_core::api::CredentialStore>,
    key: &CacheKey,
) -> Result<Inner, Refusal> {
    keyring_core::Entry::new_in_store(store, SERVICE, key.as_str())
        .map(|e| Inner::Core(std::sync::Arc::new(e)))
        .map_err(|e| Refusal::Other(classify(e)))
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
fn core_load(entry: &keyring_core::Entry) -> Result<Load, StoreError> {
    match entry.get_secret() {
        Ok(bytes) => Ok(Load::Found(Zeroizing::new(bytes))),
        Err(keyring_core::Error::NoEntry) => Ok(Load::Missing),
        Err(
            e @ (keyring_core::Error::BadEncoding(_)
            | keyring_core::Error::BadDataFormat(..)
            | keyring_core::Error::Ambiguous(_)),
        ) => Ok(Load::Unreadable(classify(e))),
        Err(e) => Err(StoreError(classify(e))),
    }
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
fn core_save(entry: &keyring_core::Entry, bytes: &[u8]) -> Result<(), String> {
    entry.set_secret(bytes).map_err(classify)
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
fn core_delete(entry: &keyring_core::Entry) -> Result<bool, String> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(classify(e)),
    }
}

/// Words a keyring-core error without the entry's bytes, which some
/// variants carry.
#[cfg(any(target_os = "macos", target_os = "windows"))]
fn classify(e: keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::BadEncoding(_) => "the entry is not UTF-8".into(),
        E::BadDataFormat(..) => "the entry is malformed".into(),
        E::Ambiguous(v) => format!("{} entries match the key", v.len()),
        E::TooLong(what, max) => format!("the {what} is longer than {max}"),
        E::NoStorageAccess(e) => format!("access refused: {e}"),
        E::PlatformFailure(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// The keyrings to try, in order. A Secret Service that did not answer
/// recently is left out.
fn candidates(dir: Option<&Path>) -> Vec<Backend> {
    let _ = dir;
    #[cfg(target_os = "linux")]
    {
        let mut v = Vec::with_capacity(2);
        if session_bus_present() {
            if recently_unanswered(dir) {
                tracing::debug!("the Secret Service did not answer recently; skipped");
                warn_if_unwarned(dir);
            } else {
                v.push(Backend::SecretService);
            }
        }
        v.push(Backend::Keyutils);
        v
    }
    #[cfg(target_os = "macos")]
    {
        vec![Backend::Keychain]
    }
    #[cfg(target_os = "windows")]
    {
        vec![Backend::CredentialManager]
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Vec::new()
    }
}

/// The backends `clear` visits: every one that may hold an entry here,
/// whatever `--cache` says.
pub fn every_backend() -> Vec<Backend> {
    #[cfg(target_os = "linux")]
    {
        let mut v = vec![Backend::Keyutils];
        if session_bus_present() {
            v.push(Backend::SecretService);
        }
        v
    }
    #[cfg(not(target_os = "linux"))]
    {
        candidates(None)
    }
}

/// Whether a D-Bus session bus is there to ask. Checked without connecting,
/// so a headless machine never tries to autolaunch a bus.
#[cfg(target_os = "linux")]
fn session_bus_present() -> bool {
    match crate::env::Env::var_os(&crate::env::ProcessEnv, "DBUS_SESSION_BUS_ADDRESS") {
        Some(a) => !a.is_empty(),
        None => crate::env::Env::var_os(&crate::env::ProcessEnv, "XDG_RUNTIME_DIR")
            .map(|d| std::path::Path::new(&d).join("bus").exists())
            .unwrap_or(false),
    }
}
