#!/usr/bin/env bash
# The redshift-creds benchmark: one command, no AWS account.
#
#   bench/run.sh
#
# It measures, on this machine and against local endpoints only (127.0.0.1):
#   * a cache hit (`get` on a valid entry, file store and kernel keyutils),
#     side by side with a do-nothing Rust binary and `redshift-creds --version`;
#   * the same hit against `aws redshift get-cluster-credentials` (AWS CLI v1);
#   * a cold call (`--cache none`: every run calls the API) against moto and
#     against the fake Redshift API (crates/testkit's counting-server, the one
#     the tests use) with no delay;
#   * peak RSS (/usr/bin/time -v) of the hit and the cold call;
#   * a burst: 64 concurrent `get` on an empty cache against an endpoint that
#     answers after 500 ms, counting the API calls it receives;
#   * the size of the release binaries (redshift-creds and redshift-creds-aws).
# It prints a table and writes bench/results.md. Times come from hyperfine
# (medians). Each comparison is measured side by side in one run: its runs are
# split into rounds that alternate between the commands (see compare()), so
# the commands share the machine's conditions.
#
# Installs what is missing: Debian hyperfine, time and keyutils (apt-get), and
# a venv with awscli and moto[server].
#
# BENCH_VENV            the venv (default .venv-bench in the repository)
# BENCH_HIT_RUNS        hyperfine runs per command for the hit comparisons (300)
# BENCH_AWS_RUNS        runs per command for the AWS CLI comparison (12)
# BENCH_COLD_RUNS       runs per command for the cold call (120)
# BENCH_ROUNDS          each comparison's runs are split into this many
#                       interleaved rounds (6); see compare()
# BENCH_RSS_RUNS        /usr/bin/time runs per command; the median is kept (7)
# BENCH_BURST_REPEATS   burst repetitions, each on a fresh cache (5)
# BENCH_PROFILE=1       also record strace -c / perf stat / ldd evidence in
#                       bench/profile.txt (not committed)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$root/bench/run.sh

AWSCLI_VERSION=1.46.3
MOTO_VERSION=5.2.5
BURST_N=64
BURST_DELAY=0.5

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# The median of numbers, one per line on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# rss_kib NAME CMD...: the median peak RSS in KiB over BENCH_RSS_RUNS runs, as
# reported by /usr/bin/time -v. Records "rss.NAME=KIB" in $work/values.
rss_kib() {
    local name=$1 i out
    shift
    out=$work/rss-$name
    : >"$out"
    for ((i = 0; i < BENCH_RSS_RUNS; i++)); do
        /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/rss-stderr" ||
            { cat "$work/rss-stderr" "$work/time.txt" >&2; die "$name failed under /usr/bin/time"; }
        awk -F': ' '/Maximum resident set size \(kbytes\)/ { print $2 }' "$work/time.txt" >>"$out"
    done
    printf 'rss.%s=%s\n' "$name" "$(median <"$out")" >>"$work/values"
    printf '%-24s peak RSS median %s KiB (runs: %s)\n' "$name" "$(median <"$out")" "$(tr '\n' ' ' <"$out")" >&2
}

# expect_hit STORE CMD...: run CMD with -v and make sure it was a cache hit
# served by STORE (as logged: "store=file", "store=keyring (kernel keyutils)").
expect_hit() {
    local store=$1 out
    shift
    out=$("$@" -v 2>&1 >/dev/null) || { printf '%s\n' "$out" >&2; die "$* failed"; }
    [[ $out == *"outcome=Hit store=$store"* ]] ||
        { printf '%s\n' "$out" >&2; die "expected a cache hit from store=$store: $*"; }
}

hyperfine_() { hyperfine -N --style basic --time-unit millisecond "$@"; }

# compare NAME TOTAL_RUNS WARMUP LABEL1 CMD1 [LABEL2 CMD2 ...]: one side-by-side
# comparison. hyperfine runs all the runs of one command before the next, so a
# change in the machine's load (other builds on these 2 cores) would land on one
# command only. So the runs are split into BENCH_ROUNDS rounds, each one
# hyperfine call over all the commands, in forward order in even rounds and in
# reverse order in odd ones. report.py pools the rounds ($work/NAME.ROUND.json).
compare() {
    local name=$1 total=$2 warmup=$3 r k i per n
    shift 3
    local -a pairs=("$@") args
    n=$((${#pairs[@]} / 2))
    per=$(((total + BENCH_ROUNDS - 1) / BENCH_ROUNDS))
    for ((r = 0; r < BENCH_ROUNDS; r++)); do
        args=()
        for ((k = 0; k < n; k++)); do
            if ((r % 2)); then i=$((n - 1 - k)); else i=$k; fi
            args+=(-n "${pairs[2 * i]}" "${pairs[2 * i + 1]}")
        done
        printf '  %s: round %d of %d, %d runs of each command\n' "$name" $((r + 1)) "$BENCH_ROUNDS" "$per" >&2
        hyperfine_ --warmup "$warmup" --runs "$per" --export-json "$work/$name.$r.json" "${args[@]}" \
            >>"$work/hyperfine.log"
    done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- Inside `keyctl session -`: the keyutils hit and the AWS CLI comparison ----
#
# The keyutils store needs a session keyring the process may use. Here the
# default one refuses access (`--cache keyring` exits 4), and a fresh one from
# `keyctl session -` works; entries outlive it through the persistent keyring.
# All commands of these comparisons run in this one session, so none of them
# pays for keyctl.
keyring_phase() {
    local get_moto=$get_moto_q noop_q version_q
    printf -v noop_q '%q' "$noop"
    printf -v version_q '%q --version' "$bin"
    eval "local get_moto_a=($get_moto_q)"

    log "Cache hit, kernel keyutils (inside keyctl session; load $(loadavg))"
    "${get_moto_a[@]}" --cache keyring >/dev/null # warm: fills the keyring (or hits it)
    expect_hit 'keyring (kernel keyutils)' "${get_moto_a[@]}" --cache keyring
    echo "load.hit_keyring=$(loadavg)" >>"$work/values"
    compare hit-keyring "$BENCH_HIT_RUNS" 10 \
        'do-nothing Rust binary' "$noop_q" \
        'redshift-creds --version' "$version_q" \
        'get, hit (keyutils)' "$get_moto --cache keyring"
    rss_kib hit_keyring "${get_moto_a[@]}" --cache keyring

    log "Cache hit vs the AWS CLI (load $(loadavg))"
    expect_hit file "${get_moto_a[@]}" --cache file
    echo "load.aws=$(loadavg)" >>"$work/values"
    compare aws "$BENCH_AWS_RUNS" 1 \
        'aws redshift get-cluster-credentials' \
        "$(printf '%q ' "$venv/bin/aws" redshift get-cluster-credentials --cluster-identifier examplecluster \
            --db-user bench --endpoint-url "$moto_endpoint" --region us-east-1)" \
        'get, hit (file)' "$get_moto --cache file" \
        'get, hit (keyutils)' "$get_moto --cache keyring"
}

if [[ ${1:-} == --keyring-phase ]]; then
    keyring_phase
    exit 0
fi

# --- Setup -------------------------------------------------------------------

case ${BENCH_VENV:-} in
    '') venv=$root/.venv-bench ;;
    /*) venv=$BENCH_VENV ;;
    *) venv=$PWD/$BENCH_VENV ;;
esac
cd "$root"
export BENCH_HIT_RUNS=${BENCH_HIT_RUNS:-300} BENCH_AWS_RUNS=${BENCH_AWS_RUNS:-12}
export BENCH_COLD_RUNS=${BENCH_COLD_RUNS:-120} BENCH_RSS_RUNS=${BENCH_RSS_RUNS:-7}
export BENCH_ROUNDS=${BENCH_ROUNDS:-6}
BENCH_BURST_REPEATS=${BENCH_BURST_REPEATS:-5}

apt_missing=()
command -v hyperfine >/dev/null || apt_missing+=(hyperfine)
[[ -x /usr/bin/time ]] || apt_missing+=(time)
command -v keyctl >/dev/null || apt_missing+=(keyutils)
command -v curl >/dev/null || apt_missing+=(curl)
command -v python3 >/dev/null || apt_missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=(python3-venv)
if [[ ${BENCH_PROFILE:-} == 1 ]]; then
    command -v strace >/dev/null || apt_missing+=(strace)
fi
if ((${#apt_missing[@]})); then
    log "Installing ${apt_missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

venv_ok() {
    "$venv/bin/python" - "$AWSCLI_VERSION" "$MOTO_VERSION" 2>/dev/null <<'EOF'
import importlib.metadata as m, sys
ok = m.version("awscli") == sys.argv[1] and m.version("moto") == sys.argv[2] and m.version("flask")
sys.exit(0 if ok else 1)
EOF
}
if ! venv_ok; then
    log "Installing awscli==$AWSCLI_VERSION and moto[server]==$MOTO_VERSION into $venv"
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "awscli==$AWSCLI_VERSION" "moto[server]==$MOTO_VERSION"
    venv_ok || die "the venv $venv lacks awscli==$AWSCLI_VERSION or moto==$MOTO_VERSION"
fi
py=$venv/bin/python

work=$(mktemp -d "${TMPDIR:-/tmp}/redshift-creds-bench.XXXXXX")
export work venv
pids=()
cleanup() {
    local pid
    # Remove this run's keyutils entries (the endpoint port makes each run's keys new).
    if [[ -n ${bin:-} && -x ${bin:-} && -d $work/cache ]]; then
        keyctl session - "$bin" clear --all >/dev/null 2>&1 || true
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --workspace: at the root, a plain build makes only the front package's binary; the
# helper (crates/aws) must be rebuilt too, or its size and the cold calls would be stale.
log "Building the release binaries (cargo build --release --locked --workspace --all-features), the front as installed (--profile front)"
cargo build --release --locked --workspace --all-features
cargo build --profile front --locked -p redshift-creds
# The front as install/install.sh builds it, with the AWS side beside it, as installed.
rm -f "$root/target/release/redshift-creds"
cp "$root/target/front/redshift-creds" "$root/target/release/redshift-creds"
bin=$root/target/release/redshift-creds
export bin
# The fake Redshift API (crates/testkit, built by --workspace above).
counting_server=$root/target/release/counting-server
noop=$work/do-nothing
printf 'fn main() {}\n' >"$work/do-nothing.rs"
rustc -O -o "$noop" "$work/do-nothing.rs"
export noop

# A clean, fake AWS environment: nothing from the caller's shell or ~/.aws; no
# D-Bus session bus, so the Linux keyring is kernel keyutils; and the CA store
# found as on a default Debian install (no SSL_CERT_* overrides).
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
    AWS_ENDPOINT_URL_REDSHIFT AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE \
    REDSHIFT_CREDS_CACHE REDSHIFT_CREDS_CONFIG RUST_LOG \
    DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR SSL_CERT_FILE SSL_CERT_DIR
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export XDG_CONFIG_HOME=$work/config # no config file of the caller's
export REDSHIFT_CREDS_CACHE_DIR=$work/cache

# --- Endpoints ---------------------------------------------------------------

log "Starting moto_server and the counting servers on 127.0.0.1"
"$venv/bin/moto_server" -H 127.0.0.1 -p 0 >"$work/moto.log" 2>&1 &
pids+=($!)
"$counting_server" --delay 0 --port-file "$work/count0.port" >"$work/count0.log" 2>&1 &
pids+=($!)
"$counting_server" --delay "$BURST_DELAY" --port-file "$work/count500.port" >"$work/count500.log" 2>&1 &
pids+=($!)
moto_port=
for _ in $(seq 300); do
    moto_port=$(sed -n 's|.* \* Running on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$work/moto.log" | head -n1)
    [[ -n $moto_port && -s $work/count0.port && -s $work/count500.port ]] && break
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { cat "$work"/*.log >&2; die "an endpoint exited"; }
    done
    sleep 0.1
done
[[ -n $moto_port ]] || { cat "$work/moto.log" >&2; die "moto_server did not log its port"; }
[[ -s $work/count0.port && -s $work/count500.port ]] || die "the counting servers did not start"
moto_endpoint=http://127.0.0.1:$moto_port
count0_endpoint=http://127.0.0.1:$(cat "$work/count0.port")
count500_endpoint=http://127.0.0.1:$(cat "$work/count500.port")
export moto_endpoint

# moto routes a request to a service by the credential scope in its Authorization header.
reply=$(curl -s "$moto_endpoint/" \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/redshift/aws4_request, SignedHeaders=host, Signature=x' \
    --data 'Action=CreateCluster&Version=2012-12-01&ClusterIdentifier=examplecluster&NodeType=dc2.large&MasterUsername=admin&MasterUserPassword=Password1')
[[ $reply == *"<CreateClusterResponse"* ]] || { printf 'CreateCluster failed:\n%s\n' "$reply" >&2; exit 1; }

common=(get --cluster-identifier examplecluster --db-user bench --region us-east-1)
get_moto=("$bin" "${common[@]}" --endpoint-url "$moto_endpoint")
get_count0=("$bin" "${common[@]}" --endpoint-url "$count0_endpoint")
get_count500=("$bin" "${common[@]}" --endpoint-url "$count500_endpoint")
# hyperfine -N splits a command string like a shell; %q keeps odd paths whole.
get_moto_q=$(printf '%q ' "${get_moto[@]}")
get_count0_q=$(printf '%q ' "${get_count0[@]}")
export get_moto_q
printf -v noop_q '%q' "$noop"
printf -v version_q '%q --version' "$bin"

: >"$work/values"
{
    echo "load.start=$(loadavg)"
    echo "size.bytes=$(stat -c %s "$bin")"
    echo "size.aws_bytes=$(stat -c %s "$bin-aws")"
    echo "size.file=$(file -b "$bin" 2>/dev/null || echo unknown)"
} >>"$work/values"

# --- Cache hit, file store ---------------------------------------------------

log "Cache hit, file store (load $(loadavg))"
"${get_moto[@]}" --cache file >/dev/null # warm: one API call fills the entry
expect_hit file "${get_moto[@]}" --cache file
echo "load.hit_file=$(loadavg)" >>"$work/values"
compare hit-file "$BENCH_HIT_RUNS" 10 \
    'do-nothing Rust binary' "$noop_q" \
    'redshift-creds --version' "$version_q" \
    'get, hit (file)' "$get_moto_q --cache file"
rss_kib noop "$noop"
rss_kib version "$bin" --version
rss_kib hit_file "${get_moto[@]}" --cache file

# --- Cache hit, keyutils, and the AWS CLI ------------------------------------

# The keyring store must be kernel keyutils; a bare session keyring refuses it.
keyctl session - "$BASH" "$self" --keyring-phase

# --- Cold call ---------------------------------------------------------------

log "Cold call, --cache none (load $(loadavg))"
before=$(curl -s "$count0_endpoint/count")
"${get_count0[@]}" --cache none >/dev/null
after=$(curl -s "$count0_endpoint/count")
((after == before + 1)) || die "--cache none did not call the counting server"
echo "load.cold=$(loadavg)" >>"$work/values"
compare cold "$BENCH_COLD_RUNS" 3 \
    'get, cold (counting server, no delay)' "$get_count0_q --cache none" \
    'get, cold (moto)' "$get_moto_q --cache none"
rss_kib cold_count "${get_count0[@]}" --cache none
rss_kib cold_moto "${get_moto[@]}" --cache none

# --- Burst -------------------------------------------------------------------

log "Burst: $BURST_N concurrent get --cache file on an empty cache, endpoint answers after ${BURST_DELAY}s (load $(loadavg))"
echo "load.burst=$(loadavg)" >>"$work/values"
for ((r = 1; r <= BENCH_BURST_REPEATS; r++)); do
    dir=$work/burst-$r
    mkdir -p "$dir/out"
    before=$(curl -s "$count500_endpoint/count")
    burst_pids=()
    start=$EPOCHREALTIME
    for ((i = 0; i < BURST_N; i++)); do
        REDSHIFT_CREDS_CACHE_DIR=$dir/cache "${get_count500[@]}" --cache file \
            >"$dir/out/$i.json" 2>"$dir/out/$i.err" &
        burst_pids+=($!)
    done
    ok=0
    for pid in "${burst_pids[@]}"; do
        if wait "$pid"; then ok=$((ok + 1)); fi
    done
    end=$EPOCHREALTIME
    after=$(curl -s "$count500_endpoint/count")
    wall_ms=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", (e - s) * 1000 }')
    distinct=$(cat "$dir"/out/*.json | sed -n 's/.*"DbPassword":"\([^"]*\)".*/\1/p' | sort -u | wc -l)
    calls=$((after - before))
    echo "burst.$r=$wall_ms $ok $distinct $calls" >>"$work/values"
    printf 'burst %d: %s ms, %d/%d succeeded, %d distinct password(s), %d API call(s)\n' \
        "$r" "$wall_ms" "$ok" "$BURST_N" "$distinct" "$calls" >&2
    if ((ok < BURST_N)); then
        grep -h . "$dir"/out/*.err | sort | uniq -c | head -n 5 >&2 || true
    fi
done

# --- Evidence (optional) -----------------------------------------------------

if [[ ${BENCH_PROFILE:-} == 1 ]]; then
    log "Profile evidence -> bench/profile.txt"
    {
        echo "# bench/profile.txt: where the time and memory go ($(date -u +%FT%TZ), $(git rev-parse --short HEAD))"
        echo
        echo "## ldd target/release/redshift-creds"
        ldd "$bin" || true
        echo
        echo "## ldd do-nothing"
        ldd "$noop" || true
        for b in "$bin" "$noop"; do
            echo
            echo "## Relocations and relocated data: ${b##*/}"
            readelf -d "$b" | grep -E 'RELACOUNT|FLAGS' || true
            readelf -S -W "$b" | grep -E ' \.(rela\.dyn|relr\.dyn|data\.rel\.ro|text|rodata) ' || true
            echo "## LD_DEBUG=statistics: ${b##*/}"
            if [[ $b == "$noop" ]]; then cmd=("$b"); else cmd=("$b" --version); fi
            LD_DEBUG=statistics "${cmd[@]}" 2>&1 >/dev/null | grep -E 'total startup time|time needed for relocation' || true
        done
        for what in noop version hit_file cold_count; do
            case $what in
                noop) cmd=("$noop") ;;
                version) cmd=("$bin" --version) ;;
                hit_file) cmd=("${get_moto[@]}" --cache file) ;;
                cold_count) cmd=("${get_count0[@]}" --cache none) ;;
            esac
            echo
            echo "## strace -f -c: $what"
            strace -f -c -o "$work/strace.txt" "${cmd[@]}" >/dev/null 2>&1 || true
            cat "$work/strace.txt"
            if command -v perf >/dev/null; then
                echo
                echo "## perf stat -r 50: $what"
                perf stat -r 50 -e task-clock,page-faults,context-switches,cpu-migrations \
                    "${cmd[@]}" 2>&1 >/dev/null | sed '/^$/d' || true
            fi
        done
        # The cold call loads the system CA store (bundle and certs directory)
        # even for an http:// endpoint; empty stand-ins show what that costs.
        mkdir -p "$work/empty-certs"
        : >"$work/empty.pem"
        echo
        echo "## Cold call (counting server) with the CA store as found, without the certs directory, without either"
        hyperfine_ --warmup 5 --runs 60 \
            -n 'as found' "env $get_count0_q --cache none" \
            -n 'SSL_CERT_DIR=empty dir' "env SSL_CERT_DIR=$work/empty-certs $get_count0_q --cache none" \
            -n 'SSL_CERT_DIR=empty dir, SSL_CERT_FILE=empty file' \
            "env SSL_CERT_DIR=$work/empty-certs SSL_CERT_FILE=$work/empty.pem $get_count0_q --cache none" 2>&1 |
            grep -E '^Benchmark|Time|Range' || true
        if command -v perf >/dev/null; then
            for what in noop hit_file; do
                case $what in
                    noop) cmd_q=$noop_q ;;
                    hit_file) cmd_q="$get_moto_q --cache file" ;;
                esac
                echo
                echo "## perf record -e cpu-clock over 300 runs of $what, by process and object"
                perf record -q -o "$work/perf.data" -e cpu-clock -F 20000 -- \
                    bash -c "for i in {1..300}; do $cmd_q >/dev/null; done" >/dev/null 2>&1 || true
                perf report -i "$work/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null |
                    grep '%' | head -n 12 || true
            done
        fi
    } >"$root/bench/profile.txt" 2>&1
fi

# --- Table -------------------------------------------------------------------

commit=$(git rev-parse --short HEAD)
if [[ -n $(git status --porcelain -- src crates Cargo.toml Cargo.lock build.rs 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes in src/, crates/ or Cargo.*)"
fi
export commit
export BENCH_MACHINE_CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
export BENCH_MACHINE_NPROC=$(nproc)
export BENCH_MACHINE_KERNEL=$(uname -sr)
export BENCH_MACHINE_MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
export BENCH_VERSIONS="$(hyperfine --version | head -n1); $(rustc --version); $("$venv/bin/aws" --version 2>&1 | cut -d' ' -f1); moto $MOTO_VERSION; $("$bin" --version)"
echo "load.end=$(loadavg)" >>"$work/values"

"$py" "$root/bench/report.py" "$work" "$root/bench/results.md.tmp"
mv "$root/bench/results.md.tmp" "$root/bench/results.md"
echo
cat "$root/bench/results.md"
