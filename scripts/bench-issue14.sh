#!/usr/bin/env bash
# Issue 14's goal table in one run: every bench behind its rows, one after the other, on an
# otherwise idle machine, each printing its same-run ratios. The output (with the time and load
# before each bench) goes to the terminal and to target/bench-issue14-<date>.log; the rows of
# docs/BENCHMARKS.md's "one run" table are read from it.
#
#   scripts/bench-issue14.sh            # everything, ~60 minutes on the 2-core machine
#   SKIP_OPEN_1M=1 scripts/bench-issue14.sh   # without the 1 M-segment cold open (~15 min of it)
#
# Needs nginx (/usr/sbin/nginx, Debian package) for the HTTP baseline and Node.js for Azurite
# (scripts/azurite.sh installs it with npm); a bench whose baseline is missing says so.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
log="target/bench-issue14-$(date -u +%Y%m%dT%H%M).log"
exec > >(tee "$log") 2>&1

step() {
  echo
  echo "=== $1: $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

step "build"
cargo bench --no-run --bench ingest --bench read --bench http_range --bench tier --bench open

step "ingest (1, 16, 256 MiB x 1 and x 8; raw, raw+SHA, raw_append, files+SQLite; CPU, device bytes)"
FOOTAGE_BENCH_CRITERION=0 FOOTAGE_BENCH_ROUNDS=5 cargo bench --bench ingest

step "verified reads vs pread"
cargo bench --bench read

step "HTTP Range GETs vs nginx"
FOOTAGE_BENCH_CRITERION=0 FOOTAGE_BENCH_ROUNDS=3 cargo bench --bench http_range

step "upload + verify + evict vs plain puts, file:// and Azurite"
# shellcheck source=scripts/azurite.sh
source scripts/azurite.sh
trap 'kill "$AZURITE_PID" 2>/dev/null || true' EXIT
FOOTAGE_BENCH_TIER_MB=16 FOOTAGE_BENCH_TIER_PAIRS=8 cargo bench --bench tier
kill "$AZURITE_PID" 2>/dev/null || true
unset FOOTAGE_AZURITE_URL

if [ -z "${SKIP_OPEN_1M:-}" ]; then
  step "cold open of 1,000,000 segments + 9,999 in the log tail"
  FOOTAGE_BENCH_OPEN_1M=1 cargo bench --bench open  # FOOTAGE_BENCH_OPEN_1M_DIR=<dir> keeps and reuses the fixture
fi

step "done (log: $log)"
