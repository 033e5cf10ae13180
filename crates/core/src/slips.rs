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
    "--auto-create",
    "--no-auto-create",
    "--with-iam",
    "--no-with-iam",
    "--no-refresh-ahead",
    "--watch",
    "--quiet",
    "--all",
    "--client-tls",
];

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
        (SWITCHES.contains(&w[0]) && BOOLEANS.contains(&value.as_str())).then(|| {
            Slip::Line(format!(
                "{} is a switch and takes no value: remove \"{}\" (see --help)",
                w[0], w[1]
            ))
        })
    })
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
        fn walk(cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
            for arg in cmd.get_arguments() {
                if matches!(arg.get_action(), clap::ArgAction::SetTrue)
                    && let Some(long) = arg.get_long()
                {
                    out.insert(format!("--{long}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut defined = std::collections::BTreeSet::new();
        walk(&Cli::command(), &mut defined);
        let listed: std::collections::BTreeSet<String> =
            SWITCHES.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed, defined);
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
}
