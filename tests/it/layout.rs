//! The architecture as a build fact: what each package may link (see ARCHITECTURE.md).

use std::process::Command;

/// The normal dependency tree of one workspace package, one crate per line.
fn tree(package: &str) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = crate::support::run_ok(
        Command::new(cargo)
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                package,
            ])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")),
        "cargo tree",
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Crates that belong on the AWS side only.
fn sdk_side(line: &str) -> bool {
    let name = line.split_whitespace().next().unwrap_or("");
    name.starts_with("aws-")
        || ["tokio", "hyper", "rustls", "tokio-rustls", "h2", "ring"].contains(&name)
}

#[test]
fn the_front_and_the_core_link_no_sdk_runtime_or_tls() {
    for package in ["redshift-creds", "redshift-creds-core"] {
        let tree = tree(package);
        assert!(tree.contains("redshift-creds-core"), "{tree}");
        let found: Vec<&str> = tree.lines().filter(|l| sdk_side(l)).collect();
        assert!(found.is_empty(), "{package} links {found:?}");
    }
}

#[test]
fn the_aws_package_is_where_the_sdk_lives() {
    let tree = tree("redshift-creds-aws");
    assert!(
        tree.lines().any(|l| l.starts_with("aws-sdk-redshift ")),
        "{tree}"
    );
    assert!(tree.lines().any(|l| l.starts_with("tokio ")), "{tree}");
}

/// The test kit (real PostgreSQL, fake Redshift API) is dev-only: no package links it
/// normally, and both test crates use the one copy.
#[test]
fn the_test_kit_is_a_dev_dependency_only() {
    for package in [
        "redshift-creds",
        "redshift-creds-core",
        "redshift-creds-aws",
        "redshift-creds-proxy",
    ] {
        let tree = tree(package);
        assert!(
            !tree.contains("redshift-creds-testkit"),
            "{package} links the test kit:\n{tree}"
        );
    }
    for manifest in ["Cargo.toml", "crates/proxy/Cargo.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(manifest);
        let text = std::fs::read_to_string(path).unwrap();
        let dev = text.split("[dev-dependencies]").nth(1).unwrap_or("");
        assert!(
            dev.contains("redshift-creds-testkit"),
            "{manifest}: the test kit among the dev-dependencies"
        );
    }
}
