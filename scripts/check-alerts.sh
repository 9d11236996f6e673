#!/usr/bin/env bash
# Checks deploy/prometheus/alerts.yml with promtool (syntax, PromQL, templates).
# Installs the Debian package prometheus, which ships promtool, when promtool
# is missing (needs root and apt-get); fails, rather than skips, when it
# cannot be had. That the rules and the Grafana dashboard use metric names a
# running server exports is checked by TestDeployFilesUseRealMetrics
# (internal/herd), part of `go test ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "check-alerts: promtool is missing; install the Debian package prometheus (as root: apt-get install -y prometheus)" >&2
    exit 1
  fi
  echo "== installing prometheus (for promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The package's service is not wanted here: promtool is.
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

echo "== promtool check rules ($(promtool --version 2>&1 | head -n1))"
promtool check rules deploy/prometheus/alerts.yml
