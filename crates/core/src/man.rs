//! The man page: one page, redshift-creds(1), with every subcommand and flag from the clap definition and the hand-written ENVIRONMENT, FILES, EXIT STATUS and EXAMPLES sections.

use crate::cli::Cli;
use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};

/// The variables the program reads, and what each does (the README's table).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "REDSHIFT_CREDS_CONFIG",
        "The config file, instead of the default one (see FILES).",
    ),
    (
        "REDSHIFT_CREDS_CACHE",
        "The default --cache mode: auto, keyring, file or none.",
    ),
    (
        "REDSHIFT_CREDS_CACHE_DIR",
        "The directory of the file store, the lock files and the list records (see FILES).",
    ),
    ("AWS_PROFILE", "The default --profile."),
    (
        "AWS_REGION, AWS_DEFAULT_REGION",
        "The default --region, in that order.",
    ),
    (
        "AWS_ENDPOINT_URL_REDSHIFT, AWS_ENDPOINT_URL",
        "The default --endpoint-url, in that order.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Credentials from the environment, which win over profiles. The key ID is part of the cache key.",
    ),
    (
        "PGPASSFILE",
        "The file pgpass writes, instead of ~/.pgpass.",
    ),
    (
        "SSL_CERT_FILE",
        "The system CA bundle, when it names a file.",
    ),
    (
        "RUST_LOG",
        "The log filter, for example redshift_creds=debug. Overrides -v.",
    ),
    (
        "XDG_CONFIG_HOME, XDG_CACHE_HOME",
        "Where the default config file and cache directory are.",
    ),
    (
        "COMPLETE",
        "Set by the completion scripts: the run answers a TAB and exits, reading only the config file.",
    ),
];

/// The files the program reads or writes.
const FILES: &[(&str, &str)] = &[
    (
        "${XDG_CONFIG_HOME:-~/.config}/redshift-creds/config.toml",
        "Named connections ([connections.NAME]); REDSHIFT_CREDS_CONFIG names another file. \
         macOS: ~/Library/Application Support/redshift-creds/config.toml.",
    ),
    (
        "${REDSHIFT_CREDS_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/redshift-creds}/",
        "The cache directory (0700): <key>.json entries of the file store (0600), <key>.lock lock \
         files and <key>.meta list records (never a password). macOS: ~/Library/Caches/redshift-creds.",
    ),
    (
        "${PGPASSFILE:-~/.pgpass}",
        "The pgpass file the pgpass command keeps one host:port:database:user line current in (0600).",
    ),
];

/// The exit codes, as in the README.
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "Success, including a cached, still valid password printed after a failed refresh (with a warning).",
    ),
    (
        "1",
        "The AWS call failed, the pgpass file could not be written, a doctor check failed, \
         redshift-creds-aws is missing, or anything else went wrong.",
    ),
    (
        "2",
        "Usage or configuration error: bad or missing input, a bad config file, no AWS region.",
    ),
    (
        "3",
        "Timed out waiting for another process's refresh lock, with no cached password to fall back on.",
    ),
    (
        "4",
        "The cache store asked for by name (--cache keyring or --cache file) cannot be used.",
    ),
    (
        "126",
        "exec: the command was found but could not be started.",
    ),
    ("127", "exec: the command was not found."),
];

/// Examples, as a command and what it does.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "redshift-creds get --cluster-identifier examplecluster --db-user alice --db-name dev",
        "Print JSON credentials, like aws redshift get-cluster-credentials.",
    ),
    (
        "redshift-creds exec prod -- psql",
        "Run psql with PGHOST, PGUSER, PGPASSWORD and the rest set.",
    ),
    (
        "eval \"$(redshift-creds get prod --output env)\"",
        "Export the connection into this shell.",
    ),
    (
        "redshift-creds pgpass prod --watch",
        "Keep prod's line in ~/.pgpass current.",
    ),
    (
        "redshift-creds doctor prod",
        "Check what get prod would do, one line per check.",
    ),
    (
        "source <(redshift-creds completions bash)",
        "Turn on TAB completion in bash.",
    ),
];

/// The whole page, as roff.
pub fn page() -> Vec<u8> {
    let cmd = Cli::command();
    let mut r = Roff::new();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    r.control(
        "TH",
        [
            "redshift-creds",
            "1",
            "",
            &format!("redshift-creds {version}"),
        ],
    );
    r.control("SH", ["NAME"]);
    r.text([roman(format!(
        "redshift-creds - {}",
        first_line(cmd.get_about())
    ))]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold("redshift-creds"),
        roman(" "),
        italic("COMMAND"),
        roman(" [OPTIONS]"),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        cmd.get_about().map(ToString::to_string).unwrap_or_default(),
    )]);
    r.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands() {
        command(&mut r, sub);
    }
    table(&mut r, "ENVIRONMENT", ENVIRONMENT);
    table(&mut r, "FILES", FILES);
    table(&mut r, "EXIT STATUS", EXIT_STATUS);
    r.control("SH", ["EXAMPLES"]);
    for (line, what) in EXAMPLES {
        r.control("TP", []);
        r.text([bold(*line)]);
        r.text([roman(*what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "psql(1), aws(1); the README and docs/ of redshift-creds.",
    )]);
    r.render().into_bytes()
}

/// One subcommand: its usage line, its description and every flag.
fn command(r: &mut Roff, sub: &clap::Command) {
    let mut usage = vec![bold(format!("redshift-creds {}", sub.get_name()))];
    for arg in sub.get_positionals() {
        let name = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or("ARG".into(), ToString::to_string);
        usage.push(roman(if arg.is_last_set() { " -- " } else { " " }));
        usage.push(italic(if arg.is_required_set() {
            name
        } else {
            format!("[{name}]")
        }));
    }
    if sub.get_opts().next().is_some() {
        usage.push(roman(" [OPTIONS]"));
    }
    r.control("SS", [sub.get_name()]);
    r.text(usage);
    r.control("PP", []);
    r.text([roman(help(sub.get_long_about().or(sub.get_about())))]);
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        r.control("TP", []);
        r.text(arg_head(arg));
        r.text([roman(arg_help(arg))]);
    }
}

/// `-v, --verbose`, `--cache MODE` or `NAME`.
fn arg_head(arg: &clap::Arg) -> Vec<roff::Inline> {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(ToString::to_string);
    let mut head = Vec::new();
    if let Some(short) = arg.get_short() {
        head.push(bold(format!("-{short}")));
        head.push(roman(", "));
    }
    match arg.get_long() {
        Some(long) => {
            head.push(bold(format!("--{long}")));
            if arg.get_action().takes_values() {
                let id = arg.get_id().as_str().to_uppercase();
                head.push(roman(" "));
                head.push(italic(value.unwrap_or(id)));
            }
        }
        None if arg.get_short().is_none() => {
            head.push(italic(
                value.unwrap_or_else(|| arg.get_id().as_str().to_uppercase()),
            ));
        }
        None => {}
    }
    head
}

/// An argument's help, with its possible values as `--help` lists them: only
/// for an argument that takes a value (clap gives a switch `true` and
/// `false`, which the command line refuses).
fn arg_help(arg: &clap::Arg) -> String {
    let mut text = help(arg.get_long_help().or(arg.get_help()));
    if !arg.get_action().takes_values() || arg.is_hide_possible_values_set() {
        return text;
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !values.is_empty() {
        text.push_str(&format!(" [possible values: {}]", values.join(", ")));
    }
    text
}

/// A section of term / description pairs.
fn table(r: &mut Roff, title: &str, rows: &[(&str, &str)]) {
    r.control("SH", [title]);
    for (term, what) in rows {
        r.control("TP", []);
        r.text([bold(*term)]);
        r.text([roman(*what)]);
    }
}

fn help(text: Option<&clap::builder::StyledStr>) -> String {
    text.map(ToString::to_string).unwrap_or_default()
}

fn first_line(text: Option<&clap::builder::StyledStr>) -> String {
    help(text).lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn possible_values_are_listed_for_options_only() {
        let page = String::from_utf8(super::page()).unwrap();
        assert!(!page.contains("possible values: true, false"), "{page}");
        assert!(
            page.contains("[possible values: json, password, env]"),
            "{page}"
        );
    }

    #[test]
    fn the_page_names_every_flag_of_every_command() {
        use clap::CommandFactory;
        let page = String::from_utf8(super::page()).unwrap();
        for sub in crate::cli::Cli::command().get_subcommands() {
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roffed = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(
                        page.contains(&roffed),
                        "{} --{long} missing",
                        sub.get_name()
                    );
                }
            }
        }
    }
}
