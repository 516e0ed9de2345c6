#!/usr/bin/env bash
# Installs (npm) and starts Azurite on 127.0.0.1:10000 with an empty blob store, creates the
# test container, and prints the environment the Azure tests read. Sourced by scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$ROOT/target/azurite"
mkdir -p "$NODE_DIR"
if ! command -v node >/dev/null 2>&1; then
  echo "== node is missing: Azure tests need Node.js (apt-get install nodejs npm)" >&2
  return 1 2>/dev/null || exit 1
fi
if [ ! -x "$NODE_DIR/node_modules/.bin/azurite-blob" ]; then
  echo "== installing Azurite (npm)"
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
fi
DATA="$NODE_DIR/data"
rm -rf "$DATA" && mkdir -p "$DATA"
"$NODE_DIR/node_modules/.bin/azurite-blob" --silent --disableTelemetry --location "$DATA" \
  --blobHost 127.0.0.1 --blobPort 10000 >"$NODE_DIR/azurite.log" 2>&1 &
AZURITE_PID=$!
for _ in $(seq 1 60); do
  if node "$ROOT/scripts/azurite-container.mjs" footage-test 10000 >/dev/null 2>&1; then break; fi
  sleep 0.5
done
node "$ROOT/scripts/azurite-container.mjs" footage-test 10000
export AZURITE_PID
export AZURE_STORAGE_USE_EMULATOR=true
export FOOTAGE_AZURITE_URL="az://footage-test/ci"
