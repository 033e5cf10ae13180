//! Warnings for the user on stderr, and the optional tracing log (`-v`, `RUST_LOG`) that never
//! shows secrets; for a service (`proxy --structured-logs`), both as one JSON object a line.

use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::prelude::*;

pub mod json;

/// Prints one warning line on stderr, once per process however often the
/// same thing is noticed (the cache is read before and after the lock).
/// stdout carries only the contract.
pub fn warn(message: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let line = one_line(message);
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&line) && structured() {
        json::say("WARN", &line);
        said.push(line);
    } else if !said.contains(&line) {
        let text = format!("redshift-creds: warning: {line}");
        match HELD.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(held) => held.push(text),
            None => eprintln!("{text}"),
        }
        said.push(line);
    }
}

/// Prints one line of news for the user on stderr (what a command did),
/// held back like a warning while the run may still be handed over.
pub fn note(message: &str) {
    if structured() {
        return json::say("INFO", &one_line(message));
    }
    let text = format!("redshift-creds: {}", one_line(message));
    match HELD.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        Some(held) => held.push(text),
        None => eprintln!("{text}"),
    }
}

/// Warnings kept back while `redshift-creds` may still hand the run over to
/// `redshift-creds-aws` (which would say them again).
static HELD: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// Holds warnings back from now on, until [`release`] or [`discard`].
pub fn hold() {
    *HELD.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// Prints the held warnings, and prints later ones at once.
pub fn release() {
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner()).take();
    for text in held.into_iter().flatten() {
        eprintln!("{text}");
    }
}

/// Whether warnings are being held (the front, which may still hand over).
pub fn held() -> bool {
    HELD.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// Forgets the held warnings.
pub fn discard() {
    HELD.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Prints the error that ends the run, once, on stderr.
pub fn error(message: &str) {
    if structured() {
        return json::say("ERROR", &one_line(message));
    }
    eprintln!("redshift-creds: error: {}", one_line(message));
}

/// Folds a message that may hold newlines (SDK errors do) into one line,
/// with any other control character escaped.
fn one_line(message: &str) -> String {
    escape(&message.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Escapes the control characters (ESC, BEL, CR, C1 controls...) of a string
/// that came from outside, so it cannot drive the terminal it is printed on:
/// each becomes `\u{..}`, and a backslash stays as it is. Every string from
/// AWS, a cache entry or a file that is shown to a person goes through here.
pub fn escape(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Starts the log on stderr when `-v` is given or `RUST_LOG` is set, and does
/// nothing otherwise, so a plain run pays nothing for it. Events from any
/// crate but ours below INFO are dropped whatever `RUST_LOG` says: the SDK's
/// can print request and response bodies at debug and trace.
pub fn init_log(verbose: u8) {
    if let Some(filter) = log_filter(verbose, None) {
        install(plain_layer(), filter);
    }
}

/// The log of a long-running service (`proxy`): like [`init_log`], but a
/// plain run logs at INFO (one line per session), since a daemon's log is
/// how its user sees it work.
///
/// `structured` (`--structured-logs`): every line on stderr is one JSON object from
/// here on, the log's events, [`warn`], [`note`], [`error`] and whatever else writes to
/// stderr (see [`json::wrap_stderr`], whose guard the caller keeps until it is done).
pub fn init_service_log(verbose: u8, structured: bool) {
    if structured {
        STRUCTURED.store(true, Ordering::SeqCst);
    }
    let Some(filter) = log_filter(verbose, Some("redshift_creds=info")) else {
        return;
    };
    // Only here, so the front (which calls `init_log`) links no JSON layer.
    if structured {
        install(json::JsonLayer, filter);
    } else {
        install(plain_layer(), filter);
    }
}

/// Set once a service asked for JSON lines on stderr.
static STRUCTURED: AtomicBool = AtomicBool::new(false);

/// Whether stderr speaks JSON (`proxy --structured-logs`).
pub fn structured() -> bool {
    STRUCTURED.load(Ordering::SeqCst)
}

/// The filter of the log: `RUST_LOG`, else `-v`, else `quiet` (none: no log at all).
fn log_filter(verbose: u8, quiet: Option<&str>) -> Option<EnvFilter> {
    // A RUST_LOG that is not UTF-8 cannot be a filter: it reads as unset, as
    // logging must never stop a run.
    let from_env = crate::env::text(&crate::env::ProcessEnv, "RUST_LOG")
        .ok()
        .flatten();
    Some(match (&from_env, verbose) {
        (Some(spec), _) => EnvFilter::try_new(spec).unwrap_or_else(|e| {
            warn(&format!(
                "RUST_LOG is not a valid filter ({e}); using redshift_creds=debug"
            ));
            EnvFilter::new("redshift_creds=debug")
        }),
        (None, 0) => EnvFilter::new(quiet?),
        (None, 1) => EnvFilter::new("redshift_creds=debug"),
        (None, _) => EnvFilter::new("redshift_creds=trace,aws_config=info"),
    })
}

/// The human-readable log layer.
fn plain_layer<S>() -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true)
}

/// Starts the log with `layer`, behind `filter` and [`never_secret`].
fn install<L: Layer<tracing_subscriber::Registry> + Send + Sync>(layer: L, filter: EnvFilter) {
    let layer = layer
        .with_filter(filter)
        .with_filter(FilterFn::new(never_secret));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Whether an event may be logged: our own always, anyone else's (the AWS
/// SDK and its runtime and config loader, HTTP, TLS, Tokio...) only at INFO
/// and above. An allow-list, so a new SDK crate cannot slip past it.
fn never_secret(meta: &Metadata<'_>) -> bool {
    ours(meta.target()) || *meta.level() <= Level::INFO
}

/// Whether a tracing target is one of our crates (`redshift_creds`,
/// `redshift_creds_core`, `redshift_creds_aws`, `redshift_creds_proxy`).
fn ours(target: &str) -> bool {
    target
        .strip_prefix("redshift_creds")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('_') || rest.starts_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain: é ü"), "plain: é ü");
        assert_eq!(escape("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(escape("\u{9b}2J\r\0"), "\\u{9b}2J\\u{d}\\u{0}");
        assert_eq!(one_line("x\n  y\u{1b}"), "x y\\u{1b}");
    }
}
