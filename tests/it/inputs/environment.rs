//! Environment values: a text variable that is not UTF-8 is refused (exit 2, naming it), a path variable is used as given.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, contract, get_args, prod_connection, stderr};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Bytes that are not UTF-8.
fn not_utf8(prefix: &[u8]) -> &'static OsStr {
    let mut v = prefix.to_vec();
    v.extend_from_slice(b"\xff\xfe");
    OsStr::from_bytes(Box::leak(v.into_boxed_slice()))
}

#[test]
fn a_text_variable_that_is_not_utf8_is_refused_naming_it() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut args = get_args(&url, &[]);
    args.retain(|a| *a != "--cache" && *a != "file");
    for name in [
        "REDSHIFT_CREDS_CACHE",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_REDSHIFT",
        "AWS_ACCESS_KEY_ID",
    ] {
        let out = sb.cmd(&args).env(name, not_utf8(b"x")).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(
            err,
            format!(
                "redshift-creds: error: invalid {name}: the value is not valid UTF-8; fix or unset it\n"
            )
        );
    }
    assert_eq!(server.calls(), 0);
}

#[test]
fn path_variables_that_are_not_utf8_are_used_as_given() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // The file store and the locks go to the directory as named.
    let cache_dir = sb.path().join(not_utf8(b"cache-"));
    let out = sb
        .cmd(&get_args(&url, &[]))
        .env("REDSHIFT_CREDS_CACHE_DIR", &cache_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_dir(&cache_dir).unwrap().count() > 0,
        "the entry is in the directory named"
    );
    assert!(!sb.cache_dir().exists(), "not in the default directory");
    // The config file is read from the path as named.
    let config = sb.path().join(not_utf8(b"config-"));
    std::fs::write(
        &config,
        prod_connection("fileuser", &url, "cache = \"none\"\n"),
    )
    .unwrap();
    let out = sb
        .cmd(&["get", "prod"])
        .env("REDSHIFT_CREDS_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(contract(&out)["DbUser"], "IAM:fileuser");
}

#[test]
fn a_relative_cache_dir_is_refused_naming_the_variable() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // A valid entry first, so a refusal is not a miss in disguise.
    let warm = sb.run(&get_args(&url, &[]));
    assert!(warm.status.success(), "{}", stderr(&warm));
    for relative in ["cache", "./cache", "rel/dir"] {
        for command in ["get", "pgpass"] {
            let mut args = get_args(&url, &[]);
            args[0] = command;
            let out = sb
                .cmd(&args)
                .env("REDSHIFT_CREDS_CACHE_DIR", relative)
                .current_dir(sb.path())
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {relative}: {err}");
            assert!(out.stdout.is_empty(), "{relative}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with(&format!(
                    "redshift-creds: error: invalid REDSHIFT_CREDS_CACHE_DIR \"{relative}\": must be an absolute path"
                )),
                "{err}"
            );
        }
    }
    assert_eq!(server.calls(), 1, "no AWS call for a refused value");
    assert!(!sb.path().join("rel").exists(), "nothing made");
}
