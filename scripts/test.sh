#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test.
# Needs: cargo; root (or sudo) to install ffmpeg from Debian's packages if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "== installing ffmpeg (real MP4 clips for the ingest tests)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi

# Node.js runs Azurite (the Azure Blob emulator) for the cloud tier tests.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing Node.js (Azurite for the Azure tests)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "== starting Azurite on 127.0.0.1:10000"
# shellcheck source=scripts/azurite.sh
source scripts/azurite.sh
trap 'kill "$AZURITE_PID" 2>/dev/null || true' EXIT

echo "== cargo test"
# Tests that need ffmpeg fail under CI=true when it is missing; set it here so a missing
# install step cannot hide behind a skip.
CI="${CI:-true}" cargo test "$@"
