//! The man page, rendered by the real man/groff: every section a reader looks for, and the flags and variables in them.

use crate::support::{Sandbox, require_tool};

#[test]
fn the_rendered_man_page_has_commands_environment_files_exit_status_and_examples() {
    let Some(man) = require_tool("man", "MAN") else {
        return;
    };
    let sb = Sandbox::new();
    let out = sb.run(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = sb.path().join("redshift-creds.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = sb
        .command(&man, &["-l", page.to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    for want in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "--cluster-identifier ID",
        "--output",
        "--watch",
        "--all",
        "REDSHIFT_CREDS_CONFIG",
        "REDSHIFT_CREDS_CACHE_DIR",
        "AWS_ENDPOINT_URL_REDSHIFT",
        "PGPASSFILE",
        "RUST_LOG",
        "config.toml",
        ".pgpass",
        "127",
        "exec prod -- psql",
    ] {
        assert!(
            text.contains(want),
            "the rendered page lacks {want:?}:\n{text}"
        );
    }
    // A switch takes no value (the command line refuses `--auto-create
    // true`), so the page lists values only where --help does.
    assert!(
        !text.contains("possible values: true, false"),
        "a switch is shown with values:\n{text}"
    );
    assert!(
        text.contains("possible values: json, password, env"),
        "{text}"
    );
    // No pointers to per-command pages that are not installed.
    assert!(!text.contains("redshift-creds-get(1)"));
    assert!(
        !text.contains("SDK-free"),
        "the page describes the core crate, not the program"
    );
}
