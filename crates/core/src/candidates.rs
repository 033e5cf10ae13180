//! The values the completions offer that clap cannot know by itself: connection names from the config file, and the TLS modes.

use clap_complete::CompletionCandidate;

/// The names of the connections in the config file, for `get NAME` and the
/// like. A missing or unreadable file gives none: completion never fails.
pub fn connection_names() -> Vec<CompletionCandidate> {
    let Some(path) = crate::config_file::path(&crate::config::ProcessEnv) else {
        return Vec::new();
    };
    match crate::config_file::load(&path) {
        Ok(Some(file)) => file
            .connections
            .into_keys()
            .map(CompletionCandidate::new)
            .collect(),
        _ => Vec::new(),
    }
}

/// The TLS modes `--sslmode` accepts (the others are refused by the rules).
pub fn ssl_modes() -> Vec<CompletionCandidate> {
    ["require", "verify-ca", "verify-full"]
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}
