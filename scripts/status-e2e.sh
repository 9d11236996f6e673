#!/usr/bin/env bash
# End-to-end test of the status page in headless Chromium (internal/status/e2e).
# Installs the Debian packages chromium and chromium-driver when Chromium is
# missing (needs root and apt-get), then runs the test; it fails, rather than
# skips, when no browser can be had. All traffic stays on 127.0.0.1.
#
#   scripts/status-e2e.sh                                  # run the test
#   HERD_SCREENSHOT=docs/status.png scripts/status-e2e.sh  # and refresh the screenshot
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${HERD_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "status-e2e: $chromium is missing; install the Debian packages chromium and chromium-driver (as root: apt-get install -y chromium chromium-driver)" >&2
    exit 1
  fi
  echo "== installing chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

echo "== status page end to end ($("$chromium" --version 2>/dev/null | head -n1))"
HERD_E2E_REQUIRE=1 go test -count=1 -run '^TestStatusPage' "$@" ./internal/status/e2e/
