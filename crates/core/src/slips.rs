//! Common slips on the command line, caught before or instead of clap's generic error: no arguments, a value after a switch, a command for `exec` without `--`.

use crate::cli::Cli;
use clap::CommandFactory;
use std::ffi::OsString;

/// What to tell the user about a command line clap refused, or one it took
/// in a way the user surely did not mean.
#[derive(Debug, PartialEq, Eq)]
pub enum Slip {
    /// Nothing was typed: the short help, printed as it is (as git does).
    Help(String),
    /// One line, printed as an error.
    Line(String),
}

/// The switches that take no value (clap would take a `true` after them as
/// the connection name, or as a stray argument).
const SWITCHES: &[&str] = &[
    "--verbose",
    "--auto-create",
    "--no-auto-create",
    "--with-iam",
    "--no-with-iam",
    "--identity-center",
    "--no-refresh-ahead",
    "--watch",
    "--quiet",
    "--all",
    "--client-tls",
    "--structured-logs",
    "--check",
];

/// The one-letter switches (`-q`, `-v`), alone or bundled as in `-vv` or `-qv`.
const SHORT_SWITCHES: &[char] = &['q', 'v'];

/// Words that are a value someone meant to give a switch.
const BOOLEANS: &[&str] = &["true", "false", "yes", "no", "on", "off", "1", "0"];

/// A slip in a command line clap accepted: a switch followed by `true` or
/// the like. Checked before the command runs, so `get --auto-create true`
/// does not look for a connection named "true".
pub fn accepted(args: &[OsString]) -> Option<Slip> {
    let words: Vec<&str> = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .map(|a| a.to_str().unwrap_or(""))
        .collect();
    words.windows(2).find_map(|w| {
        let value = w[1].to_ascii_lowercase();
        (is_switch(w[0]) && BOOLEANS.contains(&value.as_str())).then(|| {
            Slip::Line(format!(
                "{} is a switch and takes no value: remove \"{}\" (see --help)",
                w[0], w[1]
            ))
        })
    })
}

/// `--quiet`, `-q`, `-vv`: a word that is only switches.
fn is_switch(word: &str) -> bool {
    if SWITCHES.contains(&word) {
        return true;
    }
    match word.strip_prefix('-') {
        Some(shorts) if !shorts.is_empty() && !shorts.starts_with('-') => {
            shorts.chars().all(|c| SHORT_SWITCHES.contains(&c))
        }
        _ => false,
    }
}

/// A better word for a command line clap refused, or `None` to print clap's
/// own (through `cli::usage_line`).
pub fn refused(e: &clap::Error, args: &[OsString]) -> Option<Slip> {
    use clap::error::ErrorKind;
    if args.len() <= 1 {
        let help = Cli::command().render_help().to_string();
        return Some(Slip::Help(help));
    }
    if let Some(slip) = accepted(args) {
        return Some(slip);
    }
    let exec = args.get(1).is_some_and(|a| a == "exec");
    let dashes = args.iter().any(|a| a == "--");
    let missing_command = matches!(
        e.kind(),
        ErrorKind::MissingRequiredArgument | ErrorKind::UnknownArgument
    );
    if exec && !dashes && missing_command {
        return Some(Slip::Line(
            "exec needs the command to run after `--`: put `--` before the command, \
             as in `redshift-creds exec NAME -- psql` (see --help)"
                .to_owned(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_switch_list_is_every_switch_the_cli_defines() {
        // SWITCHES is written out so that the front's check costs no clap
        // command; this keeps it equal to the definitions.
        use std::collections::BTreeSet;
        fn walk(cmd: &clap::Command, longs: &mut BTreeSet<String>, shorts: &mut BTreeSet<char>) {
            for arg in cmd.get_arguments() {
                if !matches!(
                    arg.get_action(),
                    clap::ArgAction::SetTrue | clap::ArgAction::Count
                ) {
                    continue;
                }
                if let Some(long) = arg.get_long() {
                    longs.insert(format!("--{long}"));
                }
                shorts.extend(arg.get_short());
            }
            for sub in cmd.get_subcommands() {
                walk(sub, longs, shorts);
            }
        }
        let (mut longs, mut shorts) = (BTreeSet::new(), BTreeSet::new());
        walk(&Cli::command(), &mut longs, &mut shorts);
        let listed: BTreeSet<String> = SWITCHES.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed, longs);
        let listed: BTreeSet<char> = SHORT_SWITCHES.iter().copied().collect();
        assert_eq!(listed, shorts);
    }

    #[test]
    fn a_switch_followed_by_a_boolean_is_a_slip() {
        let Some(Slip::Line(l)) = accepted(&args("redshift-creds get prod --auto-create true"))
        else {
            panic!()
        };
        assert!(
            l.starts_with("--auto-create is a switch and takes no value"),
            "{l}"
        );
        assert_eq!(
            accepted(&args("redshift-creds get --auto-create prod")),
            None
        );
        assert_eq!(
            accepted(&args("redshift-creds exec --with-iam -- true")),
            None
        );
    }

    #[test]
    fn a_short_switch_followed_by_a_boolean_is_a_slip() {
        for (line, switch) in [
            ("redshift-creds pgpass prod -q true", "-q"),
            ("redshift-creds get prod -vv yes", "-vv"),
            ("redshift-creds pgpass prod -qv false", "-qv"),
            ("redshift-creds get prod --verbose true", "--verbose"),
        ] {
            let Some(Slip::Line(l)) = accepted(&args(line)) else {
                panic!("{line}")
            };
            assert!(
                l.starts_with(&format!("{switch} is a switch and takes no value")),
                "{l}"
            );
        }
        // A value of an option, or a word that is not only switches, is no slip.
        assert_eq!(accepted(&args("redshift-creds get -x true")), None);
        assert_eq!(accepted(&args("redshift-creds get - true")), None);
        assert_eq!(accepted(&args("redshift-creds get -q prod")), None);
    }
}
