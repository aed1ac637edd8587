#!/usr/bin/env bash
# Creates (once) the Python virtualenv the differential and schema tests use,
# with pinned packages from PyPI, and prints its python's path.
# Idempotent: a venv whose requirements stamp matches is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${DTK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dtk/venv}
req="$here/tests/requirements.txt"
stamp="$venv/.dtk-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
	echo "$venv/bin/python"
	exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
cp "$req" "$stamp"
echo "$venv/bin/python"
