#!/usr/bin/env bash
# Builds and installs redshift-creds (with redshift-creds-aws, the part with the
# AWS SDK that it runs when the cache cannot answer; the two must stay in the
# same directory), its shell completions (bash, zsh, fish)
# and its man page, all generated from the clap definitions, then prints the
# next steps. The man page goes beside the binaries (<root>/share/man/man1, where
# man-db and macOS man look for each directory on PATH), the completions under
# PREFIX (default ~/.local); REDSHIFT_CREDS_INSTALL_FLAGS adds flags to cargo
# install (the tests use --debug).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${PREFIX:-$HOME/.local}"
data="${XDG_DATA_HOME:-$prefix/share}"

# Two packages of one workspace: the front (this directory), built for size with the
# `front` profile, and the AWS side. REDSHIFT_CREDS_INSTALL_FLAGS replaces the profile.
for package in . crates/aws; do
  flags=${REDSHIFT_CREDS_INSTALL_FLAGS:-}
  if [ -z "$flags" ] && [ "$package" = . ]; then flags="--profile front"; fi
  echo "==> cargo install --locked --path $package $flags"
  # shellcheck disable=SC2086 # the flags are meant to split
  cargo install --locked --path "$package" $flags
done
root="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}"
bin="$root/bin/redshift-creds"

bash_dir="$data/bash-completion/completions"
zsh_dir="$data/zsh/site-functions"
fish_dir="${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions"
# man-db (and macOS man) search <dir>/../share/man for each <dir> on PATH, so the
# page is found as soon as the binaries are, with no MANPATH.
man_dir="$root/share/man/man1"
mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir" "$man_dir"
"$bin" completions bash >"$bash_dir/redshift-creds"
"$bin" completions zsh >"$zsh_dir/_redshift-creds"
"$bin" completions fish >"$fish_dir/redshift-creds.fish"
"$bin" man >"$man_dir/redshift-creds.1"

# bash-completion loads completions on demand from this directory of the user's.
bash_user_dir="${BASH_COMPLETION_USER_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/bash-completion}/completions"
if [ "$bash_dir" = "$bash_user_dir" ]; then
  bash_step="it loads $bash_dir/redshift-creds by itself."
else
  bash_step="it does not look in $bash_dir, so add to ~/.bashrc:
       source $bash_dir/redshift-creds"
fi

cat <<NEXT

Installed:
  binaries     $bin
               $bin-aws (run by redshift-creds; keep them together)
  bash         $bash_dir/redshift-creds
  zsh          $zsh_dir/_redshift-creds
  fish         $fish_dir/redshift-creds.fish
  man page     $man_dir/redshift-creds.1

Next steps:
  1. Put the binaries on PATH, if they are not (in ~/.bashrc or ~/.zshrc):
       export PATH="$root/bin:\$PATH"
     man redshift-creds then finds the page beside them. (If you set MANPATH,
     add $root/share/man to it, or end it with a colon.)
  2. bash: needs the bash-completion package (Debian/Ubuntu: apt install bash-completion;
     Fedora: dnf install bash-completion; macOS: brew install bash-completion@2);
     $bash_step
     zsh: add  fpath=($zsh_dir \$fpath)  before compinit in ~/.zshrc.
     fish: nothing to do.
  3. Try it (AWS credentials from your usual profile or SSO login):
       redshift-creds doctor --cluster-identifier CLUSTER --db-user USER --db-name DB
       redshift-creds exec --cluster-identifier CLUSTER --db-user USER --db-name DB -- psql
     or without AWS: install/demo.sh --keep
  4. Snippets for psql, pgcli, dbt, pgAdmin, DataGrip, DBeaver and more: install/examples/
NEXT
