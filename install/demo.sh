#!/usr/bin/env bash
# Watch redshift-creds work without an AWS account: moto_server plays the
# Redshift API on 127.0.0.1, and its access log shows which calls reach it.
#
#   install/demo.sh          the demo; everything stops and is removed at the end
#   install/demo.sh --keep   the demo, then leaves moto and a local PostgreSQL
#                            with TLS running, with a [connections.local] to try
#                            doctor, exec and proxy on; it prints how to stop them
#
# The binaries: $REDSHIFT_CREDS when set (redshift-creds-aws must be beside
# it); else the installed ones when redshift-creds is on PATH with
# redshift-creds-aws beside it (install/install.sh); else this checkout's,
# built with `cargo build --locked --workspace` (both binaries).
#
# MOTO_VENV       a Python venv with moto[server]; default .venv in the repo,
#                 the one tests/run.sh uses. Created when it has no moto_server.
# PG_BINDIR       --keep only: where initdb, postgres and pg_ctl are; default
#                 `pg_config --bindir`, initdb on PATH, or /usr/lib/postgresql/*/bin.
#
# Apart from that venv and build, everything happens in a temporary directory
# that is removed on exit (with --keep, by its stop script): the cache is a
# private file store there, the AWS credentials are fake, and ~/.aws is not read.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
absolute() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
die() { echo "demo.sh: $*" >&2; exit 1; }
venv=$(absolute "${MOTO_VENV:-$root/.venv}")

keep=
case "${1:-}" in
    '') ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "demo.sh: unknown argument \"$1\"; the only option is --keep" >&2; exit 2 ;;
esac
(($# <= 1)) || { echo "demo.sh: one argument at most (--keep)" >&2; exit 2; }

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
heading() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

# --- Setup -------------------------------------------------------------------

if [[ ! -x $venv/bin/moto_server ]]; then
    heading "Installing moto[server] into $venv"
    echo "\$ python3 -m venv $venv && $venv/bin/pip install 'moto[server]==5.2.5'"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' # as tests/run.sh
fi

# The front hands every cache miss to redshift-creds-aws in its own directory,
# so a binary counts only with that one beside it.
has_aws_beside() { [[ -x $1 && -x $(dirname "$1")/redshift-creds-aws ]]; }
installed=$(command -v redshift-creds || true)
if [[ -n ${REDSHIFT_CREDS:-} ]]; then
    bin=$(absolute "$REDSHIFT_CREDS")
elif [[ -n $installed ]] && has_aws_beside "$(absolute "$installed")"; then
    bin=$(absolute "$installed")
else
    command -v cargo >/dev/null ||
        die "cargo is not on PATH: install Rust (https://rustup.rs), or run install/install.sh and put its bin directory on PATH"
    target=$(absolute "${CARGO_TARGET_DIR:-$root/target}")
    heading "Building redshift-creds and redshift-creds-aws"
    echo "\$ cargo build --locked --workspace"
    (cd "$root" && CARGO_TARGET_DIR=$target cargo build --locked --workspace)
    bin=$target/debug/redshift-creds
fi
has_aws_beside "$bin" ||
    die "no runnable redshift-creds with redshift-creds-aws beside it at $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/redshift-creds-demo.XXXXXX")
moto_pid= pg_stop= pg_dir= kept=
cleanup() {
    [[ -z $kept ]] || return 0
    if [[ -n $pg_stop ]]; then eval "$pg_stop" >/dev/null 2>&1 || true; fi
    if [[ -n $moto_pid ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -rf "$work" ${pg_dir:+"$pg_dir"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
log=$work/moto.log
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>"$log" &
moto_pid=$!
for _ in $(seq 300); do
    curl -s -o /dev/null "$endpoint/" && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$log" >&2; echo "moto_server exited" >&2; exit 1; }
    sleep 0.1
done
curl -s -o /dev/null "$endpoint/" || { echo "moto_server did not answer on $endpoint" >&2; exit 1; }

# moto routes a request to a service by the credential scope in its Authorization header.
reply=$(curl -s "$endpoint/" \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/redshift/aws4_request, SignedHeaders=host, Signature=x' \
    --data 'Action=CreateCluster&Version=2012-12-01&ClusterIdentifier=examplecluster&NodeType=dc2.large&MasterUsername=admin&MasterUserPassword=Password1')
[[ $reply == *"<CreateClusterResponse"* ]] || { printf 'CreateCluster failed:\n%s\n' "$reply" >&2; exit 1; }

# A clean, fake AWS environment: nothing from the caller's shell or ~/.aws.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
    AWS_ENDPOINT_URL_REDSHIFT AWS_REGION AWS_DEFAULT_REGION REDSHIFT_CREDS_CACHE RUST_LOG
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
export REDSHIFT_CREDS_CACHE_DIR=$work/cache

# The seed page's example, pointed at moto, with a file cache in $work.
moto_args=(--region us-east-1 --endpoint-url "$endpoint" --cache file)
args=(get --cluster-identifier examplecluster --db-user temp_creds_user --db-name exampledb
    --duration-seconds 3600 "${moto_args[@]}")

now_ms() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo $((t / 1000))
    else
        "$venv/bin/python" -c 'import time; print(int(time.time() * 1000))'
    fi
}
api_calls() {
    sleep 0.2 # let moto write the log line after its response
    grep -c '"POST / HTTP/1.1"' "$log" || true
}
# Runs redshift-creds with the example arguments plus "$@"; sets out and ms.
run() {
    local start
    echo "\$ redshift-creds ${args[*]}${*:+ $*}"
    start=$(now_ms)
    out=$("$bin" "${args[@]}" "$@")
    ms=$(($(now_ms) - start))
}

echo "moto_server on $endpoint (log: $log), cluster examplecluster created"
echo "binary: $bin"

# --- The demo ----------------------------------------------------------------

heading "1. First call: a cache miss, so one GetClusterCredentials call"
before=$(api_calls)
run
first=$out
echo "$first"
echo "-> ${ms} ms; API calls that reached moto: $(($(api_calls) - before))"

heading "2. Second call: a cache hit, no AWS call"
before=$(api_calls)
run
echo "$out"
[[ $out == "$first" ]] && same=yes || same=NO
echo "-> ${ms} ms; same password: $same; API calls that reached moto: $(($(api_calls) - before))"

heading "3. --output password, for a tool's \"password command\" setting"
run --output password
echo "$out"
echo "(psql: PGPASSWORD=\"\$(redshift-creds get ... --output password)\" psql \"host=... user=IAM:temp_creds_user sslmode=verify-full\")"

heading "4. exec: the connection in one command's environment (the password is never shown)"
show='echo "PGUSER=$PGUSER PGHOST=$PGHOST PGDATABASE=$PGDATABASE PGPASSWORD ${PGPASSWORD:+is set}"'
ex=(exec "${args[@]:1}" -- sh -c "$show")
echo "\$ redshift-creds ${ex[*]:0:${#ex[@]}-1} '$show'"
before=$(api_calls)
"$bin" "${ex[@]}"
echo "-> API calls that reached moto: $(($(api_calls) - before)) (the password was cached; the endpoint came from DescribeClusters)"

heading "5. Eight parallel callers on an empty cache: the lock lets one of them call AWS"
rm -f "$REDSHIFT_CREDS_CACHE_DIR"/*.json
echo "\$ for i in 1 2 3 4 5 6 7 8; do redshift-creds ${args[*]} --output password & done; wait"
before=$(api_calls)
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$bin" "${args[@]}" --output password >"$work/parallel.$i" &
    pids+=($!)
done
wait "${pids[@]}"
distinct=$(sort -u "$work"/parallel.* | wc -l | tr -d ' ')
echo "-> 8 callers, $distinct distinct password(s); API calls that reached moto: $(($(api_calls) - before))"

heading "6. The cache on disk (REDSHIFT_CREDS_CACHE_DIR)"
echo "\$ ls -la \$REDSHIFT_CREDS_CACHE_DIR"
ls -la "$REDSHIFT_CREDS_CACHE_DIR"

heading "7. Bad input is refused before any AWS call"
bad=(get --cluster-identifier examplecluster --db-user temp_creds_user --duration-seconds 60 "${moto_args[@]}")
echo "\$ redshift-creds ${bad[*]}"
before=$(api_calls)
code=0
"$bin" "${bad[@]}" >"$work/bad.out" 2>"$work/bad.err" || code=$?
cat "$work/bad.err"
echo "-> exit code $code; stdout: $(wc -c <"$work/bad.out" | tr -d ' ') bytes; API calls that reached moto: $(($(api_calls) - before))"

if [[ -z $keep ]]; then
    echo
    echo "Done. moto_server is stopped and $work removed on exit."
    exit 0
fi
# shellcheck source=install/demo-keep.sh
source "$root/install/demo-keep.sh"
