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

/// The non-test `.rs` files of every package's `src/`, by path from the workspace root.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for package in [".", "crates/core", "crates/aws", "crates/proxy"] {
        walk(&root.join(package).join("src"), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, crate::cycles::strip_tests(&text).to_string())
        })
        .collect()
}

#[test]
fn only_env_rs_reads_the_environment() {
    let direct = ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("];
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|(name, _)| name != "crates/core/src/env.rs")
        .flat_map(|(name, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| direct.iter().any(|d| l.contains(d)))
                .map(|(i, l)| format!("{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "read the environment through redshift_creds_core::env (ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
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
