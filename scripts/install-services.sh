#!/usr/bin/env bash
# Installs the Debian packages behind the local services of scripts/services.sh
# (ClickHouse, PostgreSQL, MariaDB, Alertmanager, Redis; the HTTP receiver needs only
# python3), and for Kafka a Java 17 runtime (only when no java 17+ is on the PATH),
# Maven, kcat (the readiness check) and librdkafka-dev (the client tests); then
# fetches the Kafka broker's jars once (scripts/kafka/fetch.sh, a no-op when cached).
# Idempotent: runs apt-get only when a package is missing.
# Package scripts must not start the system-wide daemons (we start our own on
# free ports), so a policy-rc.d that refuses is in place during the install.
# Run as root (or with sudo available).
set -euo pipefail
packages=(
	clickhouse-server clickhouse-client
	postgresql postgresql-client
	mariadb-server mariadb-client
	prometheus-alertmanager
	redis-server redis-tools
	maven kcat librdkafka-dev
	python3 curl
)
# Kafka 4.x needs Java 17 or newer; a JDK already on the PATH is kept.
java_ok() {
	local v
	command -v java >/dev/null || return 1
	v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
	[ -n "$v" ] && [ "${v%%.*}" -ge 17 ] 2>/dev/null
}
java_ok || packages+=(openjdk-17-jre-headless)
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
fetch_kafka() {
	"$(dirname "$0")/kafka/fetch.sh" >/dev/null
}
if [ ${#missing[@]} -eq 0 ]; then
	fetch_kafka
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
# shellcheck source=scripts/apt-no-daemons.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-no-daemons.sh"
apt_install_no_daemons "${missing[@]}"
fetch_kafka
