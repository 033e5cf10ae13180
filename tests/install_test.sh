#!/usr/bin/env bash
# Runs install/install.sh into a scratch prefix and checks what it installed:
# both binaries, completions for bash, zsh and fish, and the man page.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Keep the real toolchain while HOME points at the scratch directory.
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
HOME="$scratch/home" PREFIX="$scratch/prefix" XDG_CONFIG_HOME="$scratch/config" \
  CARGO_INSTALL_ROOT="$scratch/root" CARGO_TARGET_DIR="$PWD/target" \
  RUSTUP_HOME="$rustup_home" CARGO_HOME="$cargo_home" \
  REDSHIFT_CREDS_INSTALL_FLAGS=--debug \
  ./install/install.sh >"$scratch/out" 2>&1 || { cat "$scratch/out"; exit 1; }

fail() { echo "install_test: $*" >&2; exit 1; }
bin="$scratch/root/bin/redshift-creds"
"$bin" --version | grep -q '^redshift-creds ' || fail "the installed binary does not run"
[ -x "$scratch/root/bin/redshift-creds-aws" ] || fail "redshift-creds-aws is not installed beside redshift-creds"
"$scratch/root/bin/redshift-creds-aws" --version | grep -q '^redshift-creds ' || fail "redshift-creds-aws does not run"
bash_c="$scratch/prefix/share/bash-completion/completions/redshift-creds"
zsh_c="$scratch/prefix/share/zsh/site-functions/_redshift-creds"
fish_c="$scratch/config/fish/completions/redshift-creds.fish"
man_p="$scratch/prefix/share/man/man1/redshift-creds.1"
bash -n "$bash_c" || fail "bash completion does not parse"
grep -q 'complete .*-F _clap_complete_redshift_creds redshift-creds' "$bash_c" || fail "bash completion registers nothing"
grep -q '#compdef redshift-creds' "$zsh_c" || fail "zsh completion is not a compdef"
grep -q 'complete .*--command redshift-creds' "$fish_c" || fail "fish completion is empty"
# The scripts ask the program on each TAB; tests/it/completions.rs drives them.
grep -q 'COMPLETE=fish' "$fish_c" || fail "fish completion does not ask the program"
head -5 "$man_p" | grep -q '^\.TH redshift-creds 1' || fail "man page has no .TH header"
for section in COMMANDS ENVIRONMENT FILES 'EXIT STATUS' EXAMPLES; do
  grep -q "^\.SH \"\?$section" "$man_p" || fail "man page lacks $section"
done
grep -q 'Next steps:' "$scratch/out" || fail "install.sh printed no next steps"
echo "install_test: 7 passed, 0 failed"
