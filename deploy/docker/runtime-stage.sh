#!/usr/bin/env bash
# The Dockerfile's runtime stage (and CI runs it against a local staging root):
#
#   runtime-stage.sh ROOT
#
# ROOT/usr/local holds what collect-runtime.sh staged (bin/, lib/,
# share/dtk/runtime-packages.txt). This script installs the Debian packages
# that list names plus ca-certificates (TLS to Kafka, HTTP sources, webhooks)
# and tzdata (configs' time zones, read from /usr/share/zoneinfo), skipping
# those already installed, and then checks that every binary and plugin
# resolves all its libraries and that the three binaries run.
#
# With ROOT=/ (the image) it also runs ldconfig, creates the non-root user
# dtk (uid/gid 10001), the configs directory /etc/dtk/configs and the working
# directory /var/lib/dtk (owned by dtk: the example configs' SQLite files).
# With another ROOT (CI) those system changes are skipped.
set -euo pipefail
root=${1:?usage: runtime-stage.sh ROOT}
root=$(cd "$root" && pwd)
prefix=${root%/}/usr/local
list=$prefix/share/dtk/runtime-packages.txt
[ -f "$list" ] || { echo "runtime-stage: no $list (run collect-runtime.sh first)" >&2; exit 1; }

mapfile -t packages < <(grep -v '^[[:space:]]*$' "$list")
packages+=(ca-certificates tzdata)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "runtime-stage: missing packages and not root: ${missing[*]}" >&2
		exit 1
	fi
	echo "runtime-stage: installing ${missing[*]}" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	rm -rf /var/lib/apt/lists/*
fi

if [ "$root" = / ]; then
	ldconfig
	getent group dtk >/dev/null || groupadd --system --gid 10001 dtk
	getent passwd dtk >/dev/null ||
		useradd --system --uid 10001 --gid dtk --home-dir /var/lib/dtk --no-create-home \
			--shell /usr/sbin/nologin dtk
	install -d -m 0755 /etc/dtk /etc/dtk/configs
	install -d -m 0750 -o dtk -g dtk /var/lib/dtk
fi

# Every library of every binary and plugin resolves (the staged ones first).
bad=0
for f in "$prefix"/bin/dtk "$prefix"/bin/dtk-dispatch "$prefix"/bin/dtk-worker "$prefix"/lib/libdtk*.so*; do
	[ -L "$f" ] && continue
	if LD_LIBRARY_PATH="$prefix/lib" ldd "$f" | grep -q "not found"; then
		echo "runtime-stage: $(basename "$f") has unresolved libraries:" >&2
		LD_LIBRARY_PATH="$prefix/lib" ldd "$f" | grep "not found" >&2
		bad=1
	fi
done
for b in dtk dtk-dispatch dtk-worker; do
	LD_LIBRARY_PATH="$prefix/lib" "$prefix/bin/$b" --version >/dev/null ||
		{ echo "runtime-stage: $b --version failed" >&2; bad=1; }
done
[ "$bad" -eq 0 ] || exit 1
echo "runtime-stage: dtk, dtk-dispatch, dtk-worker and $(ls "$prefix"/lib/libdtk-*.so | wc -l) plugins resolve all their libraries" >&2
