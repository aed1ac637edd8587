#!/usr/bin/env bash
# Installs the Debian packages that building and testing DetectK-C need.
# Idempotent: does nothing when every package is already installed.
# Run as root (or with sudo available).
set -euo pipefail
packages=(
	build-essential cmake ninja-build pkg-config git
	libyaml-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev
	libpq-dev libmariadb-dev libhiredis-dev librdkafka-dev
	libcmocka-dev python3 python3-venv hyperfine valgrind docker-compose prometheus
	systemd util-linux
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq >&2
# shellcheck source=scripts/apt-no-daemons.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-no-daemons.sh"
apt_install_no_daemons "${missing[@]}"
