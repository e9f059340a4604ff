#!/bin/sh
# Installs the Debian servers the integration tests and benchmarks run for real,
# when they are missing and we are root. Without root, tests that need them skip
# (or fail under CALLWATCH_REQUIRE_INTEGRATION=1).
set -e
missing=""
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v faketime >/dev/null 2>&1 || missing="$missing faketime"
command -v clickhouse-server >/dev/null 2>&1 || missing="$missing clickhouse-server"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "note: not root, not installing:$missing" >&2
  exit 0
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
