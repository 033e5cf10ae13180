//! The common slips of a first session: no arguments, a value after a switch, `exec` without `--`, and help texts that agree with the rules.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, stderr, stdout};

#[test]
fn no_arguments_print_the_short_help_on_stderr_with_exit_2() {
    let sb = Sandbox::new();
    let out = sb.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(!err.contains("error:"), "{err}");
    assert!(err.contains("Usage: redshift-creds <COMMAND>"), "{err}");
    assert!(
        err.contains("\n  get "),
        "one command per line, as in --help: {err}"
    );
}

/// Long and short switches, alone and bundled (`-qv`), of `get` and `pgpass`.
#[test]
fn a_value_after_a_switch_is_named_as_such() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let url = server.url();
    let cases = [
        ("get", "--auto-create"),
        ("get", "--with-iam"),
        ("pgpass", "-q"),
        ("get", "-v"),
        ("pgpass", "-qv"),
    ];
    for (command, switch) in cases {
        let mut args = vec![command];
        args.extend(crate::support::cred_args(&url, &[switch, "true"]));
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            stderr(&out),
            format!(
                "redshift-creds: error: {switch} is a switch and takes no value: remove \"true\" (see --help)\n"
            )
        );
    }
    assert_eq!(server.calls(), 0);
}

#[test]
fn exec_without_a_double_dash_says_to_put_one_before_the_command() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let url = server.url();
    let mut args = vec!["exec"];
    args.extend(crate::support::cred_args(&url, &["psql"]));
    let out = sb.run(&args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("put `--` before the command"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.calls(), 0);
}

#[test]
fn clearing_an_empty_cache_says_there_was_nothing() {
    let sb = Sandbox::new();
    let out = sb.run(&["clear", "--all"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "no cached entries\n");
    assert_eq!(
        stdout(&sb.run(&["clear", "prod"])),
        "no cached entries for \"prod\"\n"
    );
}

#[test]
fn the_help_names_every_source_the_rules_take_a_value_from() {
    let sb = Sandbox::new();
    let help = stdout(&sb.run(&["get", "--help"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    // --region: the region in a Redshift host name comes first.
    assert!(
        help.contains("the region in a Redshift --host name"),
        "{help}"
    );
    // --custom-domain-name: for a cluster, a workgroup, and with --with-iam.
    assert!(
        help.contains("(or, with --workgroup, of the workgroup)"),
        "{help}"
    );
    assert!(help.contains("also with --with-iam"), "{help}");
}
