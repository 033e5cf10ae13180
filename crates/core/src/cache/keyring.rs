//! The OS keyring store: Secret Service or kernel keyutils on Linux, Keychain, Credential Manager.

use super::key::CacheKey;
use super::{Load, StoreError};
#[cfg(target_os = "linux")]
use super::{keyutils::Keyutils, secret_service};
use std::path::Path;
use zeroize::Zeroizing;

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
    /// With the cache directory, where a Secret Service that did not answer is remembered.
    #[cfg(target_os = "linux")]
    SecretService(Option<std::path::PathBuf>),
    #[cfg(target_os = "linux")]
    Keyutils(Keyutils),
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    Core(std::sync::Arc<keyring_core::Entry>),
}

/// One key's entry in the OS keyring.
pub struct KeyringStore {
    backend: Backend,
    key: CacheKey,
    inner: Inner,
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
        let mut refusals = Vec::new();
        for &backend in backends {
            match open_backend(backend, key, dir) {
                Ok(inner) => {
                    return Ok(KeyringStore {
                        backend,
                        key: key.clone(),
                        inner,
                    });
                }
                #[cfg(target_os = "linux")]
                Err(Refusal::Unanswered(why)) => {
                    secret_service::remember_unanswered(dir, &why);
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
            Inner::SecretService(dir) => {
                secret_service::call(dir.as_deref(), move || secret_service::load(&key, &valid))
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
            Inner::SecretService(dir) => {
                secret_service::call(dir.as_deref(), move || secret_service::save(&key, &bytes))
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
            Inner::SecretService(dir) => {
                secret_service::call(dir.as_deref(), move || secret_service::delete(&key))
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
}

/// Why a backend could not be opened.
enum Refusal {
    /// The Secret Service did not answer: remembered.
    #[cfg(target_os = "linux")]
    Unanswered(String),
    Other(String),
}

fn open_backend(backend: Backend, key: &CacheKey, dir: Option<&Path>) -> Result<Inner, Refusal> {
    let _ = (key, dir);
    match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => match secret_service::probe() {
            Ok(()) => Ok(Inner::SecretService(dir.map(Path::to_path_buf))),
            Err(secret_service::Failure::Unanswered(why)) => Err(Refusal::Unanswered(why)),
            Err(secret_service::Failure::Other(why)) => Err(Refusal::Other(why)),
        },
        #[cfg(target_os = "linux")]
        Backend::Keyutils => Keyutils::open()
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
    keyring_core::Entry::new_in_store(store, super::key::SERVICE, key.as_str())
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
            if secret_service::recently_unanswered(dir) {
                tracing::debug!("the Secret Service did not answer recently; skipped");
                secret_service::warn_if_unwarned(dir);
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
