# Sourced by install/demo.sh --keep once the demo has run: leaves moto_server
# running and starts a local PostgreSQL with TLS, writes a [connections.local]
# for them, a file to source and a stop script, and prints what to try.
#
# moto's GetClusterCredentials makes up a new random password on every call,
# which no local server can know. So this PostgreSQL lets the demo's user,
# IAM:temp_creds_user, in without checking the password ("trust"), and only
# over TLS from 127.0.0.1 into exampledb; it accepts no other login (no Unix
# socket, no other pg_hba line). Everything else is real: the TLS handshake
# verified against a CA made here (sslmode=verify-full), the login as that
# user, and the proxy's upstream login.
#
# Uses from demo.sh: work bin venv endpoint moto_pid heading die, and sets
# pg_dir, pg_stop (what cleanup runs if this fails half-way) and kept.

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a step quietly; on failure shows its output and stops.
quiet() {
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; die "failed: $*"; }
}

# initdb, postgres and pg_ctl: $PG_BINDIR, `pg_config --bindir`, initdb on
# PATH, or the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
pg_bindir() {
    local d
    has_server() { [[ -x $1/initdb && -x $1/postgres && -x $1/pg_ctl ]]; }
    if [[ -n ${PG_BINDIR:-} ]]; then
        has_server "$PG_BINDIR" && echo "$PG_BINDIR"
        return
    fi
    if d=$(pg_config --bindir 2>/dev/null) && has_server "$d"; then echo "$d" && return; fi
    if d=$(command -v initdb) && has_server "$(dirname "$d")"; then dirname "$d" && return; fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n -r); do
        has_server "$d" && echo "$d" && return
    done
    return 1
}

pg_bin=$(pg_bindir) ||
    die "--keep needs PostgreSQL's server (initdb, postgres, pg_ctl): install it (Debian: apt install postgresql) or set PG_BINDIR"
psql_bin=$(command -v psql || echo "$pg_bin/psql")
[[ -x $psql_bin ]] || die "--keep needs psql (Debian: apt install postgresql-client)"
command -v openssl >/dev/null || die "--keep needs openssl"

# PostgreSQL refuses to run as root: as root, it runs as postgres (or nobody)
# in a directory that user owns.
run_as=()
if ((EUID == 0)); then
    server_user=postgres
    id -u "$server_user" >/dev/null 2>&1 || server_user=nobody
    command -v runuser >/dev/null || die "--keep as root needs runuser (util-linux) to start PostgreSQL as $server_user"
    run_as=(runuser -u "$server_user" --)
fi
chmod 0755 "$work" # only the cache under it is private, and it is 0700 itself
pg_dir=$work/pg
if ((EUID == 0)) && ! (cd / && "${run_as[@]}" test -x "$work"); then
    # $TMPDIR is closed to that user: PostgreSQL's files go to /tmp instead.
    pg_dir=$(mktemp -d /tmp/redshift-creds-pg.XXXXXX)
else
    mkdir "$pg_dir"
fi
as_server() { (cd "$pg_dir" && "${run_as[@]}" env LC_ALL=C "$@"); }

data=$pg_dir/data
pg_port=$(free_port)
pg_version=$("$pg_bin/postgres" --version | awk '{print $3}')
heading "Starting a local PostgreSQL $pg_version with TLS for [connections.local]"
echo "\$ initdb -D $data && pg_ctl -D $data -o '-p $pg_port' start   # on 127.0.0.1, a certificate for 127.0.0.1 and localhost"
ca=$work/ca.crt
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
quiet openssl req -x509 -nodes -days 30 "${ec[@]}" -keyout "$work/ca.key" -out "$ca" \
    -subj "/CN=redshift-creds demo CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
quiet openssl req -new -nodes "${ec[@]}" -keyout "$pg_dir/server.key" -out "$pg_dir/server.csr" -subj /CN=localhost
printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature,keyEncipherment \
    extendedKeyUsage=serverAuth subjectAltName=DNS:localhost,IP:127.0.0.1 >"$pg_dir/server.ext"
quiet openssl x509 -req -days 30 -set_serial "0x$(date +%s)" -in "$pg_dir/server.csr" \
    -CA "$ca" -CAkey "$work/ca.key" -extfile "$pg_dir/server.ext" -out "$pg_dir/server.crt"
chmod 0600 "$work/ca.key" "$pg_dir/server.key"
chmod 0644 "$ca"
chmod 0700 "$pg_dir"
if ((EUID == 0)); then chown -R "$server_user:" "$pg_dir"; fi

quiet as_server "$pg_bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale --no-sync
# Single-user mode: the role and database exist before any client can connect.
printf '%s\n' 'create role "IAM:temp_creds_user" login;' \
    'create database exampledb owner "IAM:temp_creds_user";' |
    as_server "$pg_bin/postgres" --single -D "$data" postgres >"$work/single.log" 2>&1 ||
    { cat "$work/single.log" >&2; die "could not create the role and database"; }
! grep -q 'ERROR' "$work/single.log" || { cat "$work/single.log" >&2; die "could not create the role and database"; }
cat >"$data/pg_hba.conf" <<'HBA'
# install/demo.sh --keep: only the demo's user, into exampledb, over TLS from
# this machine, without a password check (moto's password is random).
hostssl exampledb "IAM:temp_creds_user" 127.0.0.1/32 trust
HBA
cat >>"$data/postgresql.conf" <<CONF

# install/demo.sh --keep
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
ssl = on
ssl_cert_file = '$pg_dir/server.crt'
ssl_key_file = '$pg_dir/server.key'
fsync = off
shared_buffers = 16MB
max_connections = 20
log_connections = on
CONF

pg_ctl=("$pg_bin/pg_ctl" -D "$data" -l "$pg_dir/postgres.log")
pg_stop="(cd / && $(printf '%q ' "${run_as[@]}" "${pg_ctl[@]}") -m fast -w stop)"
quiet as_server "${pg_ctl[@]}" -o "-p $pg_port" -w -t 60 start

# --- What is left for the user -------------------------------------------------

proxy_port=$(free_port)
config=$work/config.toml
cat >"$config" <<TOML
# Written by install/demo.sh --keep: moto plays AWS at $endpoint, and a local
# PostgreSQL $pg_version on 127.0.0.1:$pg_port with TLS stands in for examplecluster.
[connections.local]
cluster_identifier = "examplecluster"
db_user = "temp_creds_user"
db_name = "exampledb"
duration_seconds = 3600
region = "us-east-1"
endpoint_url = "$endpoint"
host = "127.0.0.1"
port = $pg_port
sslmode = "verify-full"
sslrootcert = "$ca"
cache = "file"
listen = ["127.0.0.1:$proxy_port"]
TOML

env_file=$work/env.sh
{
    echo "# Source this (bash or zsh) to use [connections.local] of install/demo.sh --keep:"
    echo "# redshift-creds on PATH, the config, fake AWS credentials, a cache in $work."
    printf 'export PATH=%q:"$PATH"\n' "$(dirname "$bin")"
    printf 'export REDSHIFT_CREDS_CONFIG=%q REDSHIFT_CREDS_CACHE_DIR=%q\n' "$config" "$work/cache"
    echo 'export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true'
    printf 'export AWS_CONFIG_FILE=%q AWS_SHARED_CREDENTIALS_FILE=%q\n' "$work/aws-config" "$work/aws-credentials"
    echo 'unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_REDSHIFT'
    echo 'unset AWS_REGION AWS_DEFAULT_REGION REDSHIFT_CREDS_CACHE'
} >"$env_file"

stop=$work/stop
{
    echo '#!/usr/bin/env bash'
    echo '# Stops the moto_server and PostgreSQL that install/demo.sh --keep left running, and removes their files.'
    echo "$pg_stop >/dev/null 2>&1 || true"
    printf 'if ps -p %d -o args= 2>/dev/null | grep -q moto_server; then\n' "$moto_pid"
    printf '    kill %d\n' "$moto_pid"
    printf '    for _ in $(seq 50); do kill -0 %d 2>/dev/null || break; sleep 0.1; done\n' "$moto_pid"
    echo 'fi'
    printf 'rm -rf %q %q\n' "$pg_dir" "$work"
    printf 'echo %q\n' "Stopped moto_server and PostgreSQL; removed $work."
} >"$stop"
chmod 0755 "$stop"

heading "8. Your turn: moto and PostgreSQL keep running for [connections.local]"
echo "\$ . $env_file    # in a shell you can throw away: fake AWS credentials, the config, redshift-creds on PATH"
echo "\$ redshift-creds doctor local"
echo "\$ redshift-creds exec local -- psql"
echo "\$ redshift-creds proxy local &    # then clients log in with no password:"
echo "\$ psql \"host=127.0.0.1 port=$proxy_port dbname=exampledb sslmode=disable\" -c 'select current_user'"
echo "The connection is [connections.local] in $config."
echo "PostgreSQL lets IAM:temp_creds_user in over TLS without checking the password (moto's is random); its log: $pg_dir/postgres.log"
echo "To stop both and remove $work: $stop"
kept=1
