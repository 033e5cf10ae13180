#!/usr/bin/env bash
# The proxy benchmark: `redshift-creds proxy` side by side with a direct TLS connection to
# PostgreSQL and with pgbouncer, in one run, on 127.0.0.1 only, no AWS account.
#
#   bench/proxy.sh
#
# Three arms, all to one PostgreSQL 15 (TLS with a CA made here, pg_hba `hostssl` only,
# scram-sha-256):
#   direct     pgbench/the client over TLS (sslmode=verify-full), password from $PGPASSWORD;
#   proxy      `redshift-creds proxy` (its password from crates/testkit's counting-server, cached),
#              the client in plain text on loopback, the proxy over TLS upstream, with
#              `--http` on and /metrics scraped every second, as a service runs it;
#   pgbouncer  Debian pgbouncer, session mode, auth_type = any, the same TLS upstream
#              (server_tls_sslmode = verify-full): the reference relay.
# Measured:
#   * pgbench -S TPS at 1, 4 and 16 clients (-T BENCH_PROXY_SECONDS), for all three arms;
#   * pgbench -C -S TPS (a new connection, so a new upstream TLS login, per transaction) at
#     1 and 4 clients, direct and proxy;
#   * the connection set-up time (connect, log in, `select 1`) with bench/pgclient.py,
#     BENCH_PROXY_CONNECTS per arm, interleaved: the proxy's added median;
#   * the proxy's peak RSS (VmHWM) idle, and with BENCH_PROXY_SESSIONS sessions open, on a
#     freshly started proxy.
# pgbench runs are split into BENCH_PROXY_ROUNDS rounds; in each round every arm runs once
# per client count, in an order that rotates, so the machine's load falls on every arm
# alike. The load average is recorded per round. Results: bench/proxy-results.md.
#
# Installs what is missing (apt-get): postgresql-15, postgresql-client (pgbench, psql),
# pgbouncer, openssl, python3.
#
# BENCH_PROXY_SECONDS   seconds per pgbench run (10)
# BENCH_PROXY_ROUNDS    interleaved rounds (3)
# BENCH_PROXY_CONNECTS  connections per arm for the set-up time (200)
# BENCH_PROXY_SESSIONS  sessions held open for the RSS figure (1000)
# BENCH_PROXY_PERF=1    also `perf record` the proxy during one 16-client -S run
#                       (bench/proxy-perf.txt)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
SECONDS_PER=${BENCH_PROXY_SECONDS:-10}
ROUNDS=${BENCH_PROXY_ROUNDS:-3}
CONNECTS=${BENCH_PROXY_CONNECTS:-200}
SESSIONS=${BENCH_PROXY_SESSIONS:-1000}
CLIENTS=(1 4 16)
CONNECT_CLIENTS=(1 4)
PGBIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/proxy: %s\n' "$*" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

[[ $(id -u) == 0 ]] || die "run as root: PostgreSQL and pgbouncer run as the postgres user"
missing=()
[[ -x $PGBIN/postgres ]] || missing+=(postgresql-15)
command -v pgbench >/dev/null || missing+=(postgresql-client)
command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${BENCH_PROXY_PERF:-} == 1 ]]; then command -v perf >/dev/null || missing+=(linux-perf); fi
if ((${#missing[@]})); then
    log "Installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
id -u postgres >/dev/null 2>&1 || die "no postgres OS user (it comes with postgresql-15)"
# 1,000 sessions through the proxy: 2,000 descriptors in the proxy, 1,000 in the client.
ulimit -n 65536 || ulimit -n "$(ulimit -Hn)"

log "Building the release binaries (cargo build --release --workspace)"
cargo build --release --workspace
bin=$root/target/release/redshift-creds
proxy_kind="redshift-creds proxy"

work=$(mktemp -d /tmp/rcp-proxy-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -s $work/pgbouncer/pgbouncer.pid ]] && kill "$(cat "$work/pgbouncer/pgbouncer.pid")" 2>/dev/null
    [[ -d $work/pg/data ]] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- TLS: a CA and a server certificate for 127.0.0.1 / localhost --------------

log "Making a CA and a server certificate (openssl)"
tls=$work/tls
mkdir "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >"$tls/ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$tls/ext" -out "$tls/server.crt" 2>/dev/null
ca=$tls/ca.crt
chmod 644 "$ca"

# --- PostgreSQL 15 ---------------------------------------------------------------

pw=$(openssl rand -hex 16)
pgport=$(free_port)
log "Starting PostgreSQL 15 on 127.0.0.1:$pgport (hostssl scram-sha-256 only, max_connections 1100)"
mkdir -p "$work/pg/sock"
cp "$tls/server.crt" "$tls/server.key" "$work/pg/"
chown -R postgres: "$work/pg"
chmod 700 "$work/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$work/pg/data" -U postgres -E UTF8 --no-locale --no-sync \
    --auth-local=trust --auth-host=reject >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die initdb; }
printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$work/pg/data/pg_hba.conf"
cat >>"$work/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$work/pg/sock'
max_connections = 1100
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$work/pg/server.crt'
ssl_key_file = '$work/pg/server.key'
password_encryption = 'scram-sha-256'
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w start >/dev/null ||
    { cat "$work/pg/log" >&2; die "PostgreSQL did not start"; }
# The role is the one the credential names (the counting server answers DbUser IAM:<db-user>).
psql -X -q -h "$work/pg/sock" -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -v pw="$pw" <<'EOF'
create role "IAM:bench" login password :'pw';
create database bench owner "IAM:bench";
EOF

direct_env=(env PGSSLMODE=verify-full PGSSLROOTCERT="$ca" PGPASSWORD="$pw")
"${direct_env[@]}" pgbench -q -i -s 1 -h 127.0.0.1 -p "$pgport" -U IAM:bench bench >"$work/init.log" 2>&1 ||
    { cat "$work/init.log" >&2; die "pgbench -i failed"; }

# --- The fake AWS ----------------------------------------------------------------

unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_REDSHIFT \
    AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE REDSHIFT_CREDS_CACHE REDSHIFT_CREDS_CONFIG RUST_LOG \
    DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR SSL_CERT_FILE SSL_CERT_DIR
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export XDG_CONFIG_HOME=$work/config REDSHIFT_CREDS_CACHE_DIR=$work/cache
"$root/target/release/counting-server" --password "$pw" --port-file "$work/count.port" >"$work/count.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/count.port ]] && break; sleep 0.1; done
[[ -s $work/count.port ]] || die "the counting server did not start"
endpoint=http://127.0.0.1:$(cat "$work/count.port")

# --- The proxy -------------------------------------------------------------------

# start_proxy LOG: starts the proxy on a free port, with its --http port (health checks and
# /metrics) on as a service runs it, and a scraper reading /metrics every second, as
# Prometheus would; sets proxy_pid, proxy_port and http_port.
start_proxy() {
    local out=$1
    "$bin" proxy --cluster-identifier examplecluster --db-user bench --region us-east-1 \
        --endpoint-url "$endpoint" --cache file --host 127.0.0.1 --port "$pgport" \
        --sslmode verify-full --sslrootcert "$ca" --listen 127.0.0.1:0 \
        --http 127.0.0.1:0 >/dev/null 2>"$out" &
    proxy_pid=$!
    pids+=("$proxy_pid")
    proxy_port=
    for _ in $(seq 300); do
        proxy_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out" | head -n1)
        http_port=$(sed -n 's|^serving health checks on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$out" | head -n1)
        if [[ -n $proxy_port && -n $http_port ]]; then
            (while kill -0 "$proxy_pid" 2>/dev/null; do
                curl -s -o /dev/null "http://127.0.0.1:$http_port/metrics" || true
                sleep 1
            done) &
            pids+=("$!")
            return 0
        fi
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$out" >&2; die "the proxy exited"; }
        sleep 0.1
    done
    cat "$out" >&2
    die "the proxy did not print 'listening on'"
}
stop_proxy() {
    kill -TERM "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
}
# status_kib PID FIELD: VmHWM or VmRSS in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

log "Starting the proxy ($proxy_kind)"
start_proxy "$work/proxy.log"

# --- pgbouncer -------------------------------------------------------------------

bport=$(free_port)
log "Starting pgbouncer on 127.0.0.1:$bport (session mode, auth_type = any, server_tls_sslmode = verify-full)"
mkdir "$work/pgbouncer"
cat >"$work/pgbouncer/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$pgport dbname=bench user=IAM:bench password=$pw

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = any
pool_mode = session
max_client_conn = 200
default_pool_size = 40
server_tls_sslmode = verify-full
server_tls_ca_file = $ca
logfile = $work/pgbouncer/pgbouncer.log
pidfile = $work/pgbouncer/pgbouncer.pid
EOF
chown -R postgres: "$work/pgbouncer"
chmod 700 "$work/pgbouncer"
runuser -u postgres -- "$PGBOUNCER" -d "$work/pgbouncer/pgbouncer.ini" ||
    { cat "$work/pgbouncer/pgbouncer.log" >&2; die "pgbouncer did not start"; }

# Every arm answers, as the role the credential names.
arm_env() {
    case $1 in
        direct) printf '%s\n' PGSSLMODE=verify-full "PGSSLROOTCERT=$ca" "PGPASSWORD=$pw" PGHOST=127.0.0.1 \
            "PGPORT=$pgport" PGUSER=IAM:bench ;;
        proxy) printf '%s\n' PGSSLMODE=disable PGHOST=127.0.0.1 "PGPORT=$proxy_port" PGUSER=anyone ;;
        pgbouncer) printf '%s\n' PGSSLMODE=disable PGHOST=127.0.0.1 "PGPORT=$bport" PGUSER=anyone ;;
    esac
}
for arm in direct proxy pgbouncer; do
    mapfile -t e < <(arm_env "$arm")
    who=$(env "${e[@]}" psql -X -At -d bench -c 'select current_user') || die "$arm: psql failed"
    [[ $who == IAM:bench ]] || die "$arm: logged in as '$who', not IAM:bench"
done

# --- pgbench rounds --------------------------------------------------------------

# pgbench_tps ARM ARGS...: the run's TPS.
pgbench_tps() {
    local arm=$1 out
    shift
    mapfile -t e < <(arm_env "$arm")
    out=$(env "${e[@]}" pgbench -n "$@" bench 2>&1) || { printf '%s\n' "$out" >&2; die "pgbench $arm $* failed"; }
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -n1
}

values=$work/values
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$(git rev-parse --short HEAD)$([[ -n $(git status --porcelain -- crates src Cargo.toml Cargo.lock) ]] && echo ' (uncommitted changes)')"
    echo "proxy_kind=$proxy_kind"
    echo "machine=$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(uname -sr)"
    echo "versions=$("$PGBIN/postgres" --version); $(pgbench --version); $("$PGBOUNCER" --version | head -n1); $("$bin" --version)"
    echo "load.start=$(loadavg)"
} >"$values"

arms=(direct proxy pgbouncer)
for ((r = 0; r < ROUNDS; r++)); do
    echo "load.round$((r + 1))=$(loadavg)" >>"$values"
    for c in "${CLIENTS[@]}"; do
        j=$((c < 2 ? c : 2))
        for ((k = 0; k < 3; k++)); do
            arm=${arms[(k + r + c) % 3]}
            tps=$(pgbench_tps "$arm" -S -c "$c" -j "$j" -T "$SECONDS_PER")
            printf '  round %d, -S -c %2d, %-9s %s tps (load %s)\n' $((r + 1)) "$c" "$arm" "$tps" "$(loadavg)" >&2
            echo "S $c $arm $r $tps" >>"$values"
        done
    done
    for c in "${CONNECT_CLIENTS[@]}"; do
        j=$((c < 2 ? c : 2))
        for arm in $( ((r % 2)) && echo proxy direct || echo direct proxy); do
            tps=$(pgbench_tps "$arm" -C -S -c "$c" -j "$j" -T "$SECONDS_PER")
            printf '  round %d, -C -S -c %d, %-9s %s tps (load %s)\n' $((r + 1)) "$c" "$arm" "$tps" "$(loadavg)" >&2
            echo "C $c $arm $r $tps" >>"$values"
        done
    done
done

if [[ ${BENCH_PROXY_PERF:-} == 1 ]]; then
    log "perf record of the proxy during pgbench -S -c 16"
    perf record -q -g -p "$proxy_pid" -o "$work/perf.data" -- sleep "$SECONDS_PER" >/dev/null 2>&1 &
    perf_pid=$!
    pgbench_tps proxy -S -c 16 -j 2 -T "$SECONDS_PER" >/dev/null
    wait "$perf_pid" || true
    perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
        grep '%' | head -n 60 >"$root/bench/proxy-perf.txt" || true
fi

# --- Connection set-up time ------------------------------------------------------

log "Connection set-up: $CONNECTS connections per arm, interleaved (load $(loadavg))"
echo "load.connect=$(loadavg)" >>"$values"
PGPASSWORD=$pw python3 "$root/bench/pgclient.py" times "$CONNECTS" \
    "direct=127.0.0.1:$pgport/bench/IAM:bench?tls=$ca" \
    "proxy=127.0.0.1:$proxy_port/bench/anyone" \
    "pgbouncer=127.0.0.1:$bport/bench/anyone" >"$work/connect.txt"
calls_after=$(python3 -c "import urllib.request as u; print(u.urlopen('$endpoint/count').read().decode().strip())")
echo "api_calls=$calls_after" >>"$values"
stop_proxy

# --- Memory ----------------------------------------------------------------------

log "Peak RSS of a fresh proxy: idle, then with $SESSIONS sessions open (load $(loadavg))"
start_proxy "$work/proxy-rss.log"
sleep 1
echo "rss.idle_hwm=$(status_kib "$proxy_pid" VmHWM)" >>"$values"
echo "rss.idle_rss=$(status_kib "$proxy_pid" VmRSS)" >>"$values"
mkfifo "$work/hold.in"
python3 "$root/bench/pgclient.py" hold "$SESSIONS" "127.0.0.1:$proxy_port/bench/anyone" \
    <"$work/hold.in" >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!
pids+=("$hold_pid")
exec 9>"$work/hold.in"
started=$EPOCHREALTIME
while ! grep -q '^held' "$work/hold.out"; do
    kill -0 "$hold_pid" 2>/dev/null || { cat "$work/hold.err" >&2; die "the session holder failed"; }
    sleep 0.2
done
opened=$(awk -v s="$started" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }')
sleep 1
backends=$(psql -X -At -h "$work/pg/sock" -p "$pgport" -U postgres -d postgres \
    -c "select count(*) from pg_stat_activity where usename = 'IAM:bench'")
{
    echo "rss.sessions=$SESSIONS"
    echo "rss.sessions_open_s=$opened"
    echo "rss.backends=$backends"
    echo "rss.held_hwm=$(status_kib "$proxy_pid" VmHWM)"
    echo "rss.held_rss=$(status_kib "$proxy_pid" VmRSS)"
    echo "rss.threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$proxy_pid/status")"
    echo "load.end=$(loadavg)"
} >>"$values"
exec 9>&-
wait "$hold_pid" || true
stop_proxy

python3 "$root/bench/proxy_report.py" "$values" "$work/connect.txt" "$SECONDS_PER" "$ROUNDS" \
    >"$root/bench/proxy-results.md.tmp"
mv "$root/bench/proxy-results.md.tmp" "$root/bench/proxy-results.md"
echo
cat "$root/bench/proxy-results.md"
