//! `list`, `clear` and `doctor`: what is cached, removing it, and what this machine offers.

use crate::cache::{self, key::CacheKey};
use crate::cli::ClearArgs;
use crate::config::ProcessEnv;
use crate::error::Error;
use crate::private_fs::SafeDir;
use std::io::Write;

/// The cache directory, checked as every run checks it (ours, private) and
/// held open; `None` when none is known or it does not exist yet. One that
/// is not private is [`Error::CacheUnavailable`] (exit 4): its records
/// cannot be trusted.
fn open_cache_dir() -> Result<Option<SafeDir>, Error> {
    match crate::config::cache_dir(&ProcessEnv)? {
        None => Ok(None),
        Some(d) => SafeDir::open_private_existing(&d).map_err(|reason| Error::CacheUnavailable {
            mode: "file",
            reason,
        }),
    }
}

fn now() -> i64 {
    crate::cache::refresh::Clock::now(&crate::cache::refresh::SystemClock)
}

/// Formats seconds left as `14m02s`, or `expired`.
pub fn left(seconds: i64) -> String {
    match seconds {
        s if s <= 0 => "expired".to_string(),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}m{:02}s", s / 60, s % 60),
    }
}

/// The longest a cell of `list` may be, in characters.
const MAX_CELL: usize = 200;

/// A value read from the cache directory, made safe to show: control
/// characters escaped, cut at [`MAX_CELL`] characters.
fn cell(value: &str) -> String {
    let mut shown: String = value.chars().take(MAX_CELL).collect();
    if shown.len() < value.len() {
        shown.push_str("...");
    }
    crate::report::escape(&shown)
}

/// Prints the cached entries as a table on stdout.
pub fn list(out: &mut dyn Write) -> Result<(), Error> {
    let dir = open_cache_dir()?;
    let entries = dir.as_ref().map(cache::list).unwrap_or_default();
    let now = now();
    let mut text = String::new();
    if entries.is_empty() {
        text.push_str("no cached entries\n");
    } else {
        let rows: Vec<[String; 6]> = entries
            .iter()
            .map(|m| {
                [
                    cell(&m.label),
                    cell(&m.kind),
                    cell(&m.shown_as),
                    crate::credential::rfc3339(m.expiration),
                    left(m.expiration.saturating_sub(now)),
                    cell(&m.store),
                ]
            })
            .collect();
        let header = ["CONNECTION", "KIND", "USER", "EXPIRES", "LEFT", "STORE"].map(String::from);
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                rows.iter()
                    .chain([&header])
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in [&header].into_iter().chain(rows.iter()) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
    }
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

/// Removes entries: one connection's (by its name, cluster or workgroup), or all.
pub fn clear(args: &ClearArgs, out: &mut dyn Write) -> Result<(), Error> {
    if let Some(name) = &args.name
        && (name.is_empty() || name.len() > 253 || name.chars().any(|c| c.is_control()))
    {
        return Err(Error::invalid(
            "NAME",
            name,
            "must be a connection, cluster or workgroup name",
        ));
    }
    let dir = open_cache_dir()?;
    let metas = dir.as_ref().map(cache::list).unwrap_or_default();
    let mut keys: Vec<CacheKey> = metas
        .iter()
        .filter(|m| args.all || Some(&m.label) == args.name.as_ref())
        .filter_map(|m| CacheKey::parse(&m.key))
        .collect();
    if args.all {
        // Entries without a list record (older runs) still go.
        if let Some(d) = &dir {
            for name in d.names().unwrap_or_default() {
                if let Some(k) = name.strip_suffix(".json").and_then(CacheKey::parse) {
                    keys.push(k);
                }
            }
        }
    }
    keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    keys.dedup();
    let mut removed = 0;
    let mut survived = Vec::new();
    for key in &keys {
        let done = cache::remove(dir.as_ref(), key);
        if !done.from.is_empty() && done.failed.is_empty() {
            removed += 1;
            tracing::debug!(%key, from = done.from.join(", "), "removed");
        }
        if !done.failed.is_empty() {
            survived.push(format!("{key} ({})", done.failed.join("; ")));
        }
    }
    for s in &survived {
        crate::report::warn(&format!("cannot remove the cached entry {s}"));
    }
    let what = match &args.name {
        Some(n) => format!("for \"{n}\""),
        None => "in all".to_string(),
    };
    let line = if removed == 0 {
        match &args.name {
            Some(n) => format!("no cached entries for \"{n}\"\n"),
            None => "no cached entries\n".to_owned(),
        }
    } else {
        format!(
            "removed {removed} cached {} {what}\n",
            if removed == 1 { "entry" } else { "entries" }
        )
    };
    out.write_all(line.as_bytes()).map_err(Error::Output)
}

/// Describes the cache directory for `doctor`, and clears `ok` when it is
/// not private.
pub fn describe_dir(dir: &std::path::Path, ok: &mut bool) -> String {
    match std::fs::symlink_metadata(dir) {
        Err(_) => format!(
            "{} (missing; created with mode 700 on first use)",
            dir.display()
        ),
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let mode = meta.mode() & 0o777;
                let private = meta.is_dir() && mode & 0o077 == 0;
                let mine = meta.uid() == crate::private_fs::current_uid();
                if !(private && mine) {
                    *ok = false;
                }
                format!(
                    "{} (mode {mode:o}, {}{})",
                    dir.display(),
                    if mine { "yours" } else { "NOT yours" },
                    if private {
                        ", private"
                    } else {
                        ", OPEN to other users: run chmod 700 on it"
                    }
                )
            }
            #[cfg(not(unix))]
            {
                let _ = (meta, ok);
                format!("{} (exists)", dir.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cells_are_escaped_and_bounded() {
        assert_eq!(cell("IAM:a\u{1b}[2J"), "IAM:a\\u{1b}[2J");
        let long = cell(&"u".repeat(5_000_000));
        assert_eq!(long.len(), MAX_CELL + 3);
        assert_eq!(left(i64::MIN), "expired");
        assert!(left(i64::MAX).ends_with('m'));
    }

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(left(-5), "expired");
        assert_eq!(left(0), "expired");
        assert_eq!(left(59), "0m59s");
        assert_eq!(left(842), "14m02s");
        assert_eq!(left(3600), "1h00m");
        assert_eq!(left(86_399), "23h59m");
    }
}
