#!/usr/bin/env bash
# Creates (once) the virtualenv the Airflow tests use, with the pinned
# apache-airflow of integrations/airflow/requirements.lock (the whole
# dependency set, installed with --no-deps) and the detectk package of
# ./integrations/python, and prints its python's path.
# Idempotent: a venv whose stamps match is reused as it is; a changed lock
# rebuilds it, a changed integrations/python only reinstalls detectk (which
# needs no network). Exit 3 when PyPI cannot be reached and no venv is
# cached, so a test can tell "cannot install" from a broken install.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${DTK_AIRFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dtk/airflow-venv}
lock="$here/integrations/airflow/requirements.lock"
pkg="$here/integrations/python"

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

# The package's source, by content (not mtimes): a new checkout of the same
# tree reuses the install.
pkg_hash=$(cd "$pkg" && find . -type f \( -name '*.py' -o -name '*.toml' -o -name '*.md' \) \
	-not -path '*/__pycache__/*' -not -path './build/*' -not -path '*.egg-info/*' |
	LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)

if ! { [ -x "$venv/bin/airflow" ] && cmp -s "$lock" "$venv/.dtk-lock"; }; then
	if ! python3 - <<'PY' >&2; then
import socket, sys
try:
    socket.create_connection(("pypi.org", 443), timeout=10).close()
except OSError as e:
    sys.exit("airflow-venv: PyPI (pypi.org:443) is unreachable (%s) and no Airflow venv is cached" % e)
PY
		exit 3
	fi
	python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
		echo "airflow-venv: the lock was made on CPython 3.11; $(python3 --version) may lack some of its wheels" >&2
	start=$(date +%s)
	rm -rf "$venv"
	python3 -m venv "$venv" >&2
	"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$lock" >&2
	"$venv/bin/pip" check >&2
	cp "$lock" "$venv/.dtk-lock"
	rm -f "$venv/.dtk-detectk"
	echo "airflow-venv: created $venv in $(($(date +%s) - start))s" >&2
fi

if [ "$(cat "$venv/.dtk-detectk" 2>/dev/null)" != "$pkg_hash" ]; then
	# built from a copy: pip would leave build/ and *.egg-info in the checkout
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp -r "$pkg" "$tmp/python"
	rm -rf "$tmp/python/build" "$tmp/python/src/"*.egg-info
	"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-index \
		--no-build-isolation --force-reinstall "$tmp/python" >&2
	echo "$pkg_hash" >"$venv/.dtk-detectk"
fi
echo "$venv/bin/python"
