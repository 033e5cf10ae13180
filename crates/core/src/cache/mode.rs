//! Which store the user asked for (`--cache`, `cache =`, `REDSHIFT_CREDS_CACHE`): a leaf, so the command line and the config file name it without reaching the stores.

use crate::choice::Choice;
use clap::ValueEnum;

/// Where cached credentials live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheMode {
    /// The OS keyring, or a private file when no keyring can be used.
    Auto,
    /// The OS keyring only; fail when it cannot be used.
    Keyring,
    /// A private file (0600 in a 0700 directory).
    File,
    /// No cache: call AWS every time.
    None,
}

impl Choice for CacheMode {
    fn parse(text: &str) -> Result<Self, &'static str> {
        match text {
            "auto" => Ok(CacheMode::Auto),
            "keyring" => Ok(CacheMode::Keyring),
            "file" => Ok(CacheMode::File),
            "none" => Ok(CacheMode::None),
            _ => Err("must be one of auto, keyring, file, none"),
        }
    }
}
