#!/usr/bin/env bash
# Bounded libFuzzer run: run-fuzzer.sh FUZZER_BINARY SEED_CORPUS_DIR [SECONDS=60]
# The committed seed corpus is only read; new inputs, crash artifacts and the log go to
# <build dir>/fuzz-work/<fuzzer>/ so nothing large lands in git. Exits non-zero on any crash,
# sanitizer report, leak, timeout or out-of-memory.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 FUZZER_BINARY SEED_CORPUS_DIR [SECONDS]" >&2
  exit 2
fi
bin=$1
seeds=$2
seconds=${3:-60}
[[ -x "$bin" ]] || { echo "$0: $bin: not an executable (build the fuzz target first)" >&2; exit 2; }
[[ -d "$seeds" ]] || { echo "$0: $seeds: no such seed directory" >&2; exit 2; }

name=$(basename "$bin")
work="$(cd "$(dirname "$bin")/.." && pwd)/fuzz-work/$name"
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/fuzz.log"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

status=0
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -max_len=8192 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$seeds" >"$log" 2>&1 || status=$?

tail -n 40 "$log"
echo "---"
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
edges=$(grep -oE '\(([0-9]+) inline 8-bit counters\)' "$log" | grep -oE '[0-9]+' | head -n 1 || true)
echo "$name: up to ${seconds}s, ${runs:-?} executions, final ${cov:-coverage unknown}" \
  "(of ${edges:-?} instrumented edges); log: $log"
if [[ $status -ne 0 ]]; then
  echo "$name: FAILED (exit $status); reproducer(s) in $work/artifacts/" >&2
  exit "$status"
fi
