//! The OS keyring store: Secret Service or kernel keyutils on Linux, Keychain, Credential Manager.

use super::key::CacheKey;
use super::{Load, StoreError};
use keyring_core::api::CredentialStore;
use keyring_core::{Entry, Error as KeyringError};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// The keyring service name every entry is filed under; the user is the cache key.
pub const SERVICE: &str = "redshift-creds";

/// How long a keyring call may take before the keyring counts as refusing.
/// A locked Secret Service collection can otherwise wait forever on a prompt.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

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

/// One key's entry in the OS keyring.
pub struct KeyringStore {
    backend: Backend,
    entry: Arc<Entry>,
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
    /// keyring can be used, naming each one that refused.
    pub fn open(key: &CacheKey) -> Result<KeyringStore, String> {
        let mut refusals = Vec::new();
        for backend in candidates() {
            match open_backend(backend, key) {
                Ok(entry) => {
                    return Ok(KeyringStore {
                        backend,
                        entry: Arc::new(entry),
                    });
                }
                Err(why) => {
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

    /// Reads the raw entry.
    pub fn load(&self) -> Result<Load, StoreError> {
        let entry = Arc::clone(&self.entry);
        let got = self.call(move || entry.get_secret().map(Zeroizing::new))?;
        match got {
            Ok(bytes) => Ok(Load::Found(bytes)),
            Err(KeyringError::NoEntry) => Ok(Load::Missing),
            Err(e) => match classify(e) {
                Classified::Unusable(why) => Err(StoreError(why)),
                Classified::BadEntry(why) => Ok(Load::Unreadable(why)),
            },
        }
    }

    /// Replaces the entry. Keyrings replace an item in one call, so readers
    /// see the old value or the new one.
    pub fn save(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let entry = Arc::clone(&self.entry);
        let bytes = Zeroizing::new(bytes.to_vec());
        let done = self.call(move || entry.set_secret(&bytes))?;
        done.map_err(|e| match classify(e) {
            Classified::Unusable(why) | Classified::BadEntry(why) => StoreError(why),
        })
    }

    /// Deletes the entry; `Ok(false)` when there was none.
    pub fn delete(&self) -> Result<bool, StoreError> {
        let entry = Arc::clone(&self.entry);
        match self.call(move || entry.delete_credential())? {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(e) => match classify(e) {
                Classified::Unusable(why) | Classified::BadEntry(why) => Err(StoreError(why)),
            },
        }
    }

    /// Runs a keyring call. Secret Service calls get a deadline, since a
    /// locked collection or a hung daemon would otherwise block forever.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.backend != Backend::SecretService {
            return Ok(f());
        }
        with_deadline(f).ok_or_else(|| {
            StoreError(format!(
                "the Secret Service did not answer within {} s (is the collection locked?)",
                CALL_DEADLINE.as_secs()
            ))
        })
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

enum Classified {
    Unusable(String),
    BadEntry(String),
}

/// Sorts keyring errors into "this keyring cannot be used" and "this entry
/// is bad". The wording never includes the entry's bytes, which some
/// variants carry.
fn classify(e: KeyringError) -> Classified {
    match e {
        KeyringError::BadEncoding(_) => Classified::BadEntry("the entry is not UTF-8".into()),
        KeyringError::BadDataFormat(..) => Classified::BadEntry("the entry is malformed".into()),
        KeyringError::Ambiguous(v) => {
            Classified::BadEntry(format!("{} entries match the key", v.len()))
        }
        KeyringError::TooLong(what, max) => {
            Classified::BadEntry(format!("the {what} is longer than {max}"))
        }
        KeyringError::NoStorageAccess(e) => Classified::Unusable(format!("access refused: {e}")),
        KeyringError::PlatformFailure(e) => Classified::Unusable(e.to_string()),
        other => Classified::Unusable(other.to_string()),
    }
}

fn open_backend(backend: Backend, key: &CacheKey) -> Result<Entry, String> {
    let store: Arc<CredentialStore> = match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => with_deadline(dbus_secret_service_keyring_store::Store::new)
            .ok_or_else(|| "no answer on the session bus".to_string())?
            .map_err(|e| e.to_string())?,
        #[cfg(target_os = "linux")]
        Backend::Keyutils => {
            linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        #[cfg(target_os = "macos")]
        Backend::Keychain => {
            apple_native_keyring_store::keychain::Store::new().map_err(|e| e.to_string())?
        }
        #[cfg(target_os = "windows")]
        Backend::CredentialManager => {
            windows_native_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        #[allow(unreachable_patterns)]
        _ => return Err("not supported on this platform".into()),
    };
    Entry::new_in_store(&store, SERVICE, key.as_str()).map_err(|e| match classify(e) {
        Classified::Unusable(why) | Classified::BadEntry(why) => why,
    })
}

/// The keyrings to try, in order.
fn candidates() -> Vec<Backend> {
    #[cfg(target_os = "linux")]
    {
        let mut v = Vec::with_capacity(2);
        if session_bus_present() {
            v.push(Backend::SecretService);
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

/// Whether a D-Bus session bus is there to ask. Checked without connecting,
/// so a headless machine never tries to autolaunch a bus.
#[cfg(target_os = "linux")]
fn session_bus_present() -> bool {
    match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        Some(a) => !a.is_empty(),
        None => std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| std::path::Path::new(&d).join("bus").exists())
            .unwrap_or(false),
    }
}
