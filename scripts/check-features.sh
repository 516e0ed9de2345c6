#!/usr/bin/env bash
# The engine builds without the frontends (issue 13): the library with no default features
# (store, log, index, audit, retention, tier with file:// only) and with the server alone,
# clippy-clean in each (which includes missing_docs for the engine alone), and its docs build
# with warnings denied. Prints the crates each set pulls in. (A provider feature only turns on
# object_store's; the default build has all three.)
set -euo pipefail
cd "$(dirname "$0")/.."
for set in "" "server"; do
  flags=(--no-default-features)
  [ -n "$set" ] && flags+=(--features "$set")
  crates=$(cargo tree -e normal "${flags[@]}" --prefix none 2>/dev/null | sed "s/ (\*)$//" | sort -u | wc -l)
  echo "== library, features [${set:-none}]: $crates crates"
  cargo clippy --lib "${flags[@]}" -q -- -D warnings
done
# The engine's public API is documented item by item (#![warn(missing_docs)] without `server`)
# and its docs have no broken or private links.
echo "== cargo doc of the engine, warnings denied"
RUSTDOCFLAGS="-D warnings" cargo doc --no-default-features --no-deps -q
echo "== default features (cli, server, fleet, azure, aws, gcp): $(cargo tree -e normal --prefix none 2>/dev/null | sed "s/ (\*)$//" | sort -u | wc -l) crates"
