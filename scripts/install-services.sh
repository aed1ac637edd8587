#!/usr/bin/env bash
# Installs the Debian packages behind the local services of scripts/services.sh
# (ClickHouse, PostgreSQL, MariaDB, Alertmanager, Redis; the HTTP receiver needs only
# python3). Idempotent: runs apt-get only when a package is missing.
# Package scripts must not start the system-wide daemons (we start our own on
# free ports), so a policy-rc.d that refuses is in place during the install.
# Run as root (or with sudo available).
set -euo pipefail
packages=(
	clickhouse-server clickhouse-client
	postgresql postgresql-client
	mariadb-server mariadb-client
	prometheus-alertmanager
	redis-server
	python3 curl
)
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq >&2
# clickhouse-client is optional: tests talk to ClickHouse over HTTP.
if ! apt-cache show clickhouse-client >/dev/null 2>&1; then
	echo "clickhouse-client is not available here; skipping it" >&2
	kept=()
	for p in "${missing[@]}"; do [ "$p" = clickhouse-client ] || kept+=("$p"); done
	missing=("${kept[@]}")
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
