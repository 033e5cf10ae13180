//! The values the completions offer that clap cannot know by itself: connection names from the config file, the TLS modes, and the command after `exec NAME --`.

use clap_complete::CompletionCandidate;
use clap_complete::engine::{PathCompleter, ValueCompleter};
use std::ffi::OsStr;

/// The names of the connections in the config file, for `get NAME` and the
/// like. A missing or unreadable file gives none: completion never fails.
pub fn connection_names() -> Vec<CompletionCandidate> {
    let Some(path) = crate::config_file::path(&crate::env::ProcessEnv) else {
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

/// The words after `exec ... --`: a command name from PATH right after the
/// `--` (as `env` and `sudo` complete), then paths, as a shell completes any
/// command's arguments.
///
/// Which word is being completed comes from the shell's words, not from
/// clap_complete's value index, which is 0 both for the command and for its
/// first argument.
pub fn exec_command(current: &OsStr) -> Vec<CompletionCandidate> {
    let env = crate::env::ProcessEnv;
    let words: Vec<std::ffi::OsString> = std::env::args_os()
        .skip_while(|a| a != "--")
        .skip(1)
        .collect();
    let index = crate::env::Env::var_os(&env, "_CLAP_COMPLETE_INDEX")
        .and_then(|i| i.to_str()?.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    let after_dashes = index
        .checked_sub(1)
        .and_then(|i| words.get(i))
        .is_some_and(|w| w == "--");
    let path_like = current.to_str().is_none_or(|c| c.contains('/'));
    if after_dashes && !path_like {
        command_names(&env, current)
    } else {
        PathCompleter::any().complete(current)
    }
}

/// The executables on PATH whose name starts with `prefix`, each once.
fn command_names(env: &dyn crate::env::Env, prefix: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = prefix.to_str() else {
        return Vec::new();
    };
    let path = env.var_os("PATH").unwrap_or_default();
    let mut names = std::collections::BTreeSet::new();
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.starts_with(prefix) || names.contains(&name) {
                continue;
            }
            // Follows a symlink, as the shell does when it runs the name.
            if std::fs::metadata(entry.path()).is_ok_and(|m| executable(&m)) {
                names.insert(name);
            }
        }
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

#[cfg(unix)]
fn executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(m: &std::fs::Metadata) -> bool {
    m.is_file()
}
