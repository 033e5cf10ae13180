#!/usr/bin/env bash
# The one test command. Installs what the tests need when it is missing
# (Debian packages, a Python venv with moto, another with pgcli and dbt), then
# runs the whole suite in strict mode: a suite that cannot find its real peer
# fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages: the keyrings and the D-Bus session tools. (libdbus is
# built from source into the binary, so no -dev package is needed.)
missing=()
command -v keyctl >/dev/null || missing+=(keyutils)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
command -v secret-tool >/dev/null || missing+=(libsecret-tools)
command -v dbus-run-session >/dev/null || missing+=(dbus dbus-daemon)
command -v dbus-send >/dev/null || missing+=(dbus-bin)
command -v dbus-test-tool >/dev/null || missing+=(dbus-tests) # a Secret Service that never answers
command -v python3 >/dev/null || missing+=(python3 python3-venv)
# The proxy's attack tests run an attacker as another uid with Debian's python3 (a
# pyenv one under /root is not reachable by other users).
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v curl >/dev/null || missing+=(curl) # the browser stand-in of the sign-in tests
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v openssl >/dev/null || missing+=(openssl)
command -v git >/dev/null || missing+=(git) # `dbt debug` checks for it
command -v zsh >/dev/null || missing+=(zsh)   # tests/it/completions.rs drives the real shells
command -v fish >/dev/null || missing+=(fish)
command -v man >/dev/null || missing+=(man-db) # tests/it/man.rs renders the page
command -v groff >/dev/null || missing+=(groff-base)
command -v systemd-analyze >/dev/null || missing+=(systemd) # verifies the example unit
command -v tinyproxy >/dev/null || missing+=(tinyproxy) # a forward proxy for HTTPS_PROXY
# Clients of `redshift-creds proxy` (tests/it/proxy): pgjdbc on a JDK, node-postgres on Node.
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
command -v java >/dev/null || missing+=(default-jdk-headless)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A real AWS-protocol peer: moto_server, in a venv.
venv="${REDSHIFT_CREDS_TEST_VENV:-$PWD/.venv}"
if [ ! -x "$venv/bin/moto_server" ]; then
  log "creating $venv with moto[server]"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
fi
export MOTO_SERVER="$venv/bin/moto_server"

# Real clients for `redshift-creds exec`: pgcli and dbt, in a venv of their
# own so their pins and moto's never move each other. The pins are stamped
# in the venv; a change rebuilds it. dbt-core stays below 1.12: 1.12
# needs dbt-core-experimental-parser, whose sdist downloads its wheel from
# GitHub at build time, and only package registries are reachable here.
# pinned_venv DIR PIN...: a venv in DIR holding exactly these pins (stamped in
# DIR/.pins), rebuilt when they change.
pinned_venv() {
  local dir=$1
  shift
  if [ "$(cat "$dir/.pins" 2>/dev/null)" != "$*" ]; then
    log "creating $dir with $*"
    if [ -f "$dir/pyvenv.cfg" ]; then rm -rf "$dir"; fi
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    printf '%s\n' "$*" >"$dir/.pins"
  fi
}
clients="${REDSHIFT_CREDS_CLIENTS_VENV:-$PWD/.venv-clients}"
pinned_venv "$clients" 'pgcli==4.7.1' 'dbt-postgres==1.11.0' 'dbt-core==1.11.16'
export PGCLI="$clients/bin/pgcli"
export DBT="$clients/bin/dbt"

# Database drivers for the proxy's client tests: psycopg 3 and redshift_connector in a
# venv, node-postgres in a directory of its own.
drivers="${REDSHIFT_CREDS_DRIVERS_VENV:-$PWD/.venv-drivers}"
pinned_venv "$drivers" 'psycopg[binary]==3.2.10' 'redshift-connector==2.1.8' 'prometheus-client==0.26.0'
export PYDRIVERS="$drivers/bin/python"
node_clients="${REDSHIFT_CREDS_NODE_CLIENTS:-$PWD/.node-clients}"
if [ ! -f "$node_clients/node_modules/pg/package.json" ]; then
  log "installing node-postgres into $node_clients"
  mkdir -p "$node_clients"
  (cd "$node_clients" && npm install --silent --no-audit --no-fund pg@8.16.3)
fi
export NODE_CLIENTS="$node_clients"
export PGJDBC=/usr/share/java/postgresql.jar
export REDSHIFT_CREDS_TEST_STRICT=1

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --workspace --all-targets (functions of at most 100 lines)"
cargo clippy --locked --workspace --all-targets -- -D warnings -W clippy::too_many_lines
log "cargo build --workspace (the tests run both binaries)"
cargo build --locked --workspace
# The demo as on a fresh clone: no installed redshift-creds on PATH and no
# $REDSHIFT_CREDS, so it builds the workspace itself (nothing left to build by
# now) and runs this checkout's binaries. A few seconds.
log "install/demo.sh, as on a fresh clone"
demo_path=
IFS=: read -ra path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [ -e "$d/redshift-creds" ] || demo_path="${demo_path:+$demo_path:}$d"
done
demo_log="${TMPDIR:-/tmp}/redshift-creds-demo.log"
if ! env -u REDSHIFT_CREDS PATH="$demo_path" MOTO_VENV="$venv" bash install/demo.sh </dev/null >"$demo_log" 2>&1; then
  cat "$demo_log"
  log "install/demo.sh failed"
  exit 1
fi
log "cargo test --workspace (strict: nothing may be skipped)"
cargo test --locked --workspace --all-targets --no-fail-fast 2>&1 | tee "${TMPDIR:-/tmp}/redshift-creds-test.log"
if grep -q '^SKIPPED' "${TMPDIR:-/tmp}/redshift-creds-test.log"; then
  log "a suite was skipped under tests/run.sh"
  exit 1
fi
log "install/install.sh into a scratch prefix"
bash tests/install_test.sh
log "fuzz targets, ${FUZZ_SECONDS:-30}s each"
bash tests/fuzz.sh
