#!/bin/sh
# Checks that a build users run has no fail points: with the cargo feature `failpoints` off
# (every build but `cargo test`'s), FOOTAGE_FAILPOINT must be ignored. Builds the binary as
# `cargo build` does (or as `cargo build --release` does with the argument `release`), runs
# `footage init` with a point armed that init passes through, and fails if it aborted.
#
#   scripts/check-failpoints-off.sh           # dev profile: same features as a release
#   scripts/check-failpoints-off.sh release   # the release binary itself
set -eu
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
case "${1:-dev}" in
release) cargo build --release --bin footage; bin="$target/release/footage" ;;
dev) cargo build --bin footage; bin="$target/debug/footage" ;;
*) echo "usage: $0 [dev|release]" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
FOOTAGE_FAILPOINT=write_atomic.before_rename "$bin" --store "$tmp/store" init \
    >"$tmp/out" 2>"$tmp/err" || status=$?
if [ "$status" -ne 0 ] || grep -q failpoint "$tmp/err" || [ ! -f "$tmp/store/footage.toml" ]; then
    echo "FAIL: $bin honoured FOOTAGE_FAILPOINT (exit $status):" >&2
    cat "$tmp/err" >&2
    exit 1
fi
echo "ok: $bin ignores FOOTAGE_FAILPOINT (fail points are not compiled in)"
