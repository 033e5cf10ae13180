#!/usr/bin/env bash
# Runs install/install.sh into a scratch prefix and checks what it installed:
# both binaries, completions for bash, zsh and fish, the man page (found by
# `man` with only PATH set), and next steps that name what bash and man need.
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
man_p="$scratch/root/share/man/man1/redshift-creds.1"
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
# man-db derives the search path from PATH: with the binaries' directory on PATH
# and no MANPATH, `man` finds the page installed beside them.
found=$(env -i HOME="$scratch/home" PATH="$scratch/root/bin:/usr/local/bin:/usr/bin:/bin" man -w redshift-creds) ||
  fail "man does not find redshift-creds with only $scratch/root/bin on PATH"
[ "$found" = "$man_p" ] || fail "man finds $found, not the installed $man_p"
env -i HOME="$scratch/home" PATH="$scratch/root/bin:/usr/local/bin:/usr/bin:/bin" MANPAGER=cat man redshift-creds 2>/dev/null |
  grep -q 'redshift-creds' || fail "man redshift-creds renders nothing"
grep -q 'Next steps:' "$scratch/out" || fail "install.sh printed no next steps"
grep -q 'bash-completion' "$scratch/out" || fail "the next steps do not say bash needs bash-completion"
# The default prefix is not bash-completion's user directory here, so it says what to source.
grep -qF "source $scratch/prefix/share/bash-completion/completions/redshift-creds" "$scratch/out" ||
  fail "the next steps do not say how bash loads the completion from $scratch/prefix"
grep -qF "export PATH=\"$scratch/root/bin:\$PATH\"" "$scratch/out" || fail "the next steps do not give the PATH line"
echo "install_test: every check passed"
