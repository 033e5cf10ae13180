#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 30) on its
# corpus under fuzz/corpus. A crash fails the run and leaves the input in
# fuzz/artifacts/. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the
# one stable toolchain here accept them, and `-s none` skips the sanitizer
# runtime that only nightly ships.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
passed=0
# New inputs go to a scratch directory; the committed corpus is only read.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in config_parser entry_decoder pgpass_editor host_parser; do
  mkdir -p "corpus/$target" "$scratch/$target"
  echo "==> fuzzing $target for ${seconds}s"
  if cargo fuzz run -s none -O "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 2>"/tmp/fuzz-$target.log"; then
    grep -E '^(Done|stat::number_of_executed_units)' "/tmp/fuzz-$target.log" || true
    passed=$((passed + 1))
  else
    tail -40 "/tmp/fuzz-$target.log"
    echo "fuzz: $target found a crash; the input is in fuzz/artifacts/$target/" >&2
    echo "fuzz: $passed passed, 1 failed"
    exit 1
  fi
done
echo "fuzz: $passed passed, 0 failed"
