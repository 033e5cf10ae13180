#!/usr/bin/env bash
# Builds and installs redshift-creds (with redshift-creds-aws, the part with the
# AWS SDK that it runs when the cache cannot answer; the two must stay in the
# same directory), its shell completions (bash, zsh, fish)
# and its man page, all generated from the clap definitions, then prints the
# next steps. Set PREFIX to install the extras somewhere else (default ~/.local);
# REDSHIFT_CREDS_INSTALL_FLAGS adds flags to cargo install (the tests use --debug).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${PREFIX:-$HOME/.local}"
data="${XDG_DATA_HOME:-$prefix/share}"

# Two packages of one workspace: the front (this directory) and the AWS side.
for package in . crates/aws; do
  echo "==> cargo install --locked --path $package ${REDSHIFT_CREDS_INSTALL_FLAGS:-}"
  # shellcheck disable=SC2086 # the flags are meant to split
  cargo install --locked --path "$package" ${REDSHIFT_CREDS_INSTALL_FLAGS:-}
done
root="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}"
bin="$root/bin/redshift-creds"

bash_dir="$data/bash-completion/completions"
zsh_dir="$data/zsh/site-functions"
fish_dir="${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions"
man_dir="$data/man/man1"
mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir" "$man_dir"
"$bin" completions bash >"$bash_dir/redshift-creds"
"$bin" completions zsh >"$zsh_dir/_redshift-creds"
"$bin" completions fish >"$fish_dir/redshift-creds.fish"
"$bin" man >"$man_dir/redshift-creds.1"

cat <<NEXT

Installed:
  binaries     $bin
               $bin-aws (run by redshift-creds; keep them together)
  bash         $bash_dir/redshift-creds
  zsh          $zsh_dir/_redshift-creds
  fish         $fish_dir/redshift-creds.fish
  man page     $man_dir/redshift-creds.1

Next steps:
  1. zsh only: add  fpath=($zsh_dir \$fpath)  before compinit in ~/.zshrc.
  2. man only: make sure $data/man is on your MANPATH (man redshift-creds).
  3. Try it (AWS credentials from your usual profile or SSO login):
       redshift-creds get --cluster-identifier CLUSTER --db-user USER --db-name DB
       redshift-creds exec --cluster-identifier CLUSTER --db-user USER --db-name DB -- psql
  4. Snippets for psql, pgcli, dbt, pgAdmin, DataGrip, DBeaver and more: install/examples/
NEXT
