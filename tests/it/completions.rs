//! Shell completion, driven through the real shells: bash (COMP_WORDS/COMPREPLY), fish (`complete -C`) and zsh (under zpty).

use crate::support::{Sandbox, bin, require_tool};
use std::path::Path;
use std::process::Command;

/// A sandbox with a config file of two connections, the completion script of
/// `shell` written out, and `redshift-creds` on PATH as the scripts expect.
fn setup(shell: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("config.toml"),
        "[connections.prod]\ncluster_identifier = \"c1\"\n\n[connections.dev-box]\nworkgroup = \"wg\"\n",
    )
    .unwrap();
    let out = sb.run(&["completions", shell]);
    assert!(out.status.success(), "{out:?}");
    let dir = sb.path().join("completions");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(match shell {
        "zsh" => "_redshift-creds",
        other => other,
    });
    std::fs::write(&file, &out.stdout).unwrap();
    (sb, file)
}

/// `program` in the sandbox's environment and directory, with the binary's
/// directory first on PATH and the config file set.
fn shell(sb: &Sandbox, program: &Path, args: &[&str]) -> Command {
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut c = sb.command(program, args);
    c.env("PATH", path)
        .env("REDSHIFT_CREDS_CONFIG", sb.path().join("config.toml"))
        .current_dir(sb.path());
    c
}

/// What bash's completion function puts in COMPREPLY for `line` (the last
/// word is the one being completed); none is an empty list.
fn bash(sb: &Sandbox, script: &Path, line: &str) -> Vec<String> {
    let code = r#"source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_clap_complete_redshift_creds redshift-creds "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#;
    let mut words: Vec<&str> = line.split(' ').collect();
    words.insert(0, script.to_str().unwrap());
    let mut args = vec!["-c", code, "bash"];
    args.extend(words);
    let out = shell(sb, Path::new("bash"), &args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_flags_values_and_connection_names_after_the_subcommand() {
    let (sb, script) = setup("bash");
    assert_eq!(
        bash(&sb, &script, "redshift-creds get --clu"),
        ["--cluster-identifier"]
    );
    assert_eq!(
        bash(&sb, &script, "redshift-creds get --output "),
        ["json", "password", "env"]
    );
    assert_eq!(
        bash(&sb, &script, "redshift-creds exec --cache "),
        ["auto", "keyring", "file", "none"]
    );
    assert_eq!(
        bash(&sb, &script, "redshift-creds pgpass --sslmode "),
        ["require", "verify-ca", "verify-full"]
    );
    for sub in ["get", "exec", "pgpass", "clear"] {
        let got = bash(&sb, &script, &format!("redshift-creds {sub} "));
        assert_eq!(got[..2], ["dev-box", "prod"], "{sub}: {got:?}");
    }
    assert_eq!(bash(&sb, &script, "redshift-creds get pr"), ["prod"]);
    // Completion touches nothing but the config file.
    assert!(!sb.cache_dir().exists());
}

#[test]
fn after_exec_name_and_double_dash_bash_completes_a_command_then_paths() {
    let (sb, script) = setup("bash");
    // The command: names from PATH, as `env` and `sudo` complete them (the
    // binary's directory is first on PATH here).
    let got = bash(&sb, &script, "redshift-creds exec prod -- redshift-cre");
    assert!(
        got.contains(&"redshift-creds".to_owned())
            && got.contains(&"redshift-creds-aws".to_owned()),
        "{got:?}"
    );
    assert!(got.iter().all(|c| c.starts_with("redshift-cre")), "{got:?}");
    let got = bash(
        &sb,
        &script,
        "redshift-creds exec --cache none prod -- redshift-creds-a",
    );
    assert_eq!(got, ["redshift-creds-aws"]);
    // Its arguments: paths, never command names or connection names.
    std::fs::write(sb.path().join("query.sql"), "select 1").unwrap();
    let got = bash(&sb, &script, "redshift-creds exec prod -- psql -f que");
    assert_eq!(got, ["query.sql"], "{got:?}");
    let got = bash(
        &sb,
        &script,
        "redshift-creds exec prod -- psql redshift-cre",
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn fish_completes_flags_values_and_connection_names() {
    let Some(fish) = require_tool("fish", "FISH") else {
        return;
    };
    let (sb, script) = setup("fish");
    let run = |line: &str| {
        let code = format!("source {}; complete -C '{line}'", script.display());
        let out = shell(&sb, &fish, &["--no-config", "-c", &code])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(run("redshift-creds get --clu"), ["--cluster-identifier"]);
    assert_eq!(
        run("redshift-creds get --output "),
        ["json", "password", "env"]
    );
    assert_eq!(
        run("redshift-creds get --cache "),
        ["auto", "keyring", "file", "none"]
    );
    assert_eq!(
        run("redshift-creds exec --sslmode "),
        ["require", "verify-ca", "verify-full"]
    );
    assert_eq!(run("redshift-creds clear ")[..2], ["dev-box", "prod"]);
    assert_eq!(
        run("redshift-creds exec prod -- redshift-creds-a"),
        ["redshift-creds-aws"]
    );
}

#[test]
fn zsh_completes_flags_values_and_connection_names_under_zpty() {
    let Some(zsh) = require_tool("zsh", "ZSH") else {
        return;
    };
    let (sb, script) = setup("zsh");
    let driver = sb.path().join("capture.zsh");
    std::fs::write(&driver, include_str!("completions_zpty.zsh")).unwrap();
    let fpath = script.parent().unwrap().to_str().unwrap().to_owned();
    let run = |line: &str| {
        let args = ["-f", driver.to_str().unwrap(), &fpath, line];
        let out = shell(&sb, &zsh, &args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let mut hits: Vec<String> = text
            .split("<HIT>")
            .skip(1)
            .map(|h| {
                h.split(|c: char| c.is_whitespace() || c == '<')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        hits.sort();
        hits
    };
    assert_eq!(run("redshift-creds get --clu"), ["--cluster-identifier"]);
    assert_eq!(
        run("redshift-creds get --output "),
        ["env", "json", "password"]
    );
    assert_eq!(
        run("redshift-creds pgpass --sslmode "),
        ["require", "verify-ca", "verify-full"]
    );
    assert_eq!(
        run("redshift-creds exec prod -- redshift-creds-a"),
        ["redshift-creds-aws"]
    );
    let names = run("redshift-creds exec ");
    assert!(
        names.contains(&"prod".to_owned()) && names.contains(&"dev-box".to_owned()),
        "{names:?}"
    );
}
