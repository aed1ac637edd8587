#!/usr/bin/env bash
# Creates (once) the Python virtualenv with Prefect that tests/integration/
# test_prefect.py and the flows of integrations/prefect run in, with the
# exact packages of integrations/prefect/requirements.lock (a pip freeze of
# a working `pip install prefect==3.9.1` on Python 3.11), and prints its
# python's path.
#
# Idempotent: a venv whose stamp matches the lock file is reused and PyPI is
# not contacted. The stamp is written last, so an interrupted or failed run
# (PyPI unreachable) leaves no venv that looks complete; a failed run removes
# what it made. Exit 0 with the path; 1 with pip's reason on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${DTK_PREFECT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dtk/prefect-venv}
lock="$here/integrations/prefect/requirements.lock"
stamp="$venv/.dtk-requirements"
python=${DTK_PREFECT_PYTHON:-python3}
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
	echo "$venv/bin/python"
	exit 0
fi
mkdir -p "$(dirname "$venv")"
# one maker at a time (two test runs starting together); the second reuses
# what the first made
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
	echo "$venv/bin/python"
	exit 0
fi
rm -rf "$venv"
trap '[ -f "$stamp" ] || rm -rf "$venv"' EXIT
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 30 \
	--retries 2 -r "$lock" >&2
"$venv/bin/python" -c "import prefect, sqlalchemy, aiosqlite" >&2
cp "$lock" "$stamp"
echo "$venv/bin/python"
