#!/usr/bin/env bash
# The server bench (bench/README.md, "Against the local servers"): one
# `dtk run` of the bench check against the local ClickHouse 18.16, PostgreSQL
# 15 and MariaDB, each with a 4,320-point history, and how much of its time is
# the engine's own rather than waiting on the server.
#
#   bash bench/services.sh            full run (about a minute once built)
#   bash bench/services.sh --quick    fewer runs, noisier numbers
#   bash bench/services.sh --no-mysql ClickHouse and PostgreSQL only
#
# Builds the Release tree build-bench/ as bench/run.sh does (DTK_BENCH_BUILD),
# starts the services it needs with scripts/services.sh in DTK_SERVICES_DIR
# (default build-bench/services) and stops on exit those it started. Never
# part of ctest; nothing here asserts a timing, the table only reports.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DTK_BENCH_BUILD:-$ROOT/build-bench}
FIXTURES=$ROOT/bench/fixtures/services
HELPER=$FIXTURES/bench.py
WORK=$BUILD/services-bench # SQLite reference, state dir, raw results
OUT=$WORK/results
T=2024-11-02T00:10:00Z # the check time: collects [00:00, 00:10) of 2024-11-02
FROM=2024-10-03T00:00:00Z # history: 4,320 points up to TO
TO=2024-11-02T00:00:00Z
export DTK_SERVICES_DIR=${DTK_SERVICES_DIR:-$BUILD/services}

quick=0
WARM_S=5
engines=(clickhouse postgres mysql)
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	--no-mysql) engines=(clickhouse postgres) ;;
	-h | --help)
		sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench/services.sh: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done
if ((quick)); then
	RUNS=50 JSON_RUNS=50 REPLAYS=50 WARM_S=2
else
	RUNS=300 JSON_RUNS=200 REPLAYS=200
fi

step() { printf '\n== %s\n' "$*" >&2; }

if ! command -v hyperfine >/dev/null; then
	step "installing hyperfine (Debian package)"
	if [ "$(id -u)" -eq 0 ]; then
		apt-get install -y hyperfine >/dev/null 2>&1 ||
			{ apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
	else
		sudo apt-get install -y hyperfine >/dev/null
	fi
fi
for tool in strace psql curl python3; do
	command -v "$tool" >/dev/null || {
		echo "bench/services.sh: needs $tool (apt-get install strace postgresql-client curl)" >&2
		exit 1
	}
done

step "building $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTK_TESTS=OFF >/dev/null
ninja -C "$BUILD" >/dev/null
DTK=$BUILD/cli/dtk

# The services: those already running are reused and left running; the
# ones started here are stopped on exit, whatever happens.
svc_names=(clickhouse postgres)
for e in "${engines[@]}"; do [ "$e" = mysql ] && svc_names+=(mariadb); done
started=()
stop_started() {
	if [ ${#started[@]} -gt 0 ]; then
		step "stopping the services this run started: ${started[*]}"
		"$ROOT/scripts/services.sh" stop "${started[@]}" || true
	fi
}
trap stop_started EXIT
step "services in $DTK_SERVICES_DIR"
for s in "${svc_names[@]}"; do
	if "$ROOT/scripts/services.sh" status "$s" >/dev/null 2>&1; then
		echo "$s already running: reused, left running" >&2
	else
		started+=("$s")
	fi
done
if [ ${#started[@]} -gt 0 ]; then
	"$ROOT/scripts/services.sh" start "${started[@]}"
fi
eval "$("$ROOT/scripts/services.sh" env "${svc_names[@]}")"
export BENCH_CH_PORT=$DTK_CLICKHOUSE_HTTP_PORT BENCH_CH_PASSWORD=$DTK_CLICKHOUSE_PASSWORD
export BENCH_PG_PORT=$DTK_POSTGRES_PORT
BENCH_PG_PASSWORD=$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password))' "$DTK_POSTGRES_DSN")
export BENCH_PG_PASSWORD
if [ -n "${DTK_MYSQL_DSN:-}" ]; then
	export BENCH_MY_PORT=$DTK_MARIADB_PORT
	BENCH_MY_PASSWORD=$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password))' "$DTK_MYSQL_DSN")
	export BENCH_MY_PASSWORD
fi

step "fixtures: the SQLite bench fixture, then the same 4,321 points on each server"
rm -rf "$WORK"
mkdir -p "$OUT"
export DTK_STATE_DIR=$WORK
"$BUILD/bench/bench_check" --prepare "$WORK/sqlite" --config "$ROOT/bench/fixtures/metric.yaml" >&2
for e in "${engines[@]}"; do
	python3 "$HELPER" prepare "$e" "$WORK/sqlite/source.db"
	"$DTK" load-history "$FIXTURES/$e.yaml" --from "$FROM" --to "$TO" >&2
	n=$(python3 "$HELPER" count "$e")
	[ "$n" = 4320 ] || {
		echo "bench/services.sh: $e storage holds $n history points, not 4,320" >&2
		exit 1
	}
done

# cmd_of ENGINE: the measured command, run from WORK (sqlite: from its fixture).
cmd_of() {
	if [ "$1" = sqlite ]; then
		echo "$DTK run metric.yaml --no-alerts -t $T"
	else
		echo "$DTK run $FIXTURES/$1.yaml --no-alerts -t $T"
	fi
}
dir_of() { if [ "$1" = sqlite ]; then echo "$WORK/sqlite"; else echo "$WORK"; fi; }

for e in "${engines[@]}" sqlite; do
	cmd=$(cmd_of "$e")
	cd "$(dir_of "$e")"
	if [ "$e" = clickhouse ]; then
		# every run inserts a part; start each engine's measurements merged
		curl -fsS -H "X-ClickHouse-User: $DTK_CLICKHOUSE_USER" \
			-H "X-ClickHouse-Key: $DTK_CLICKHOUSE_PASSWORD" \
			--data-binary "OPTIMIZE TABLE dtk_bench.dtk_datapoints FINAL" "$DTK_CLICKHOUSE_URL/"
	fi
	step "$e: one check, shown (the same point and detections on every engine)"
	$cmd >&2
	step "$e (1): hyperfine, $RUNS runs of the whole process"
	hyperfine -N --style basic --warmup 10 --runs "$RUNS" \
		--export-json "$OUT/hyperfine_$e.json" "$cmd" >&2
	step "$e (2): $JSON_RUNS runs with --output json: timings_ms, wall and CPU time"
	# shellcheck disable=SC2086
	python3 "$HELPER" runs "$OUT/runs_$e.json" "$JSON_RUNS" -- $cmd --output json
	if [ "$e" = clickhouse ] || [ "$e" = postgres ]; then
		step "$e (3): the bytes one dtk run sends (strace), replayed $REPLAYS times by a minimal client"
		# shellcheck disable=SC2086
		strace -f -qq -xx -s 16777216 -e trace=connect,sendto -o "$OUT/strace_$e.txt" \
			$cmd >/dev/null
		python3 "$HELPER" capture "$e" "$OUT/strace_$e.txt" "$OUT/capture_$e.json"
		python3 "$HELPER" server "$e" "$OUT/capture_$e.json" "$REPLAYS" "$OUT/server_$e.json"
	fi
done

step "process start and exit alone: hyperfine, $RUNS runs of dtk --version"
hyperfine -N --style basic --warmup 10 --runs "$RUNS" --export-json "$OUT/hyperfine_start.json" \
	"$DTK --version" >&2

step "warm: the same check over and over in one process (bench_check, one dtk_session)"
for e in "${engines[@]}"; do
	/usr/bin/time -f '%U %S' -o "$OUT/warm_cpu_$e.txt" "$BUILD/bench/bench_check" \
		--config "$FIXTURES/$e.yaml" --seconds "$WARM_S" >"$OUT/warm_$e.txt" 2>&1
	tail -3 "$OUT/warm_$e.txt" >&2
done

step "results (raw JSON in $OUT)"
python3 "$HELPER" table "$OUT" "${engines[@]}" sqlite
echo
echo "warm: one process running the check over and over (bench_check --seconds $WARM_S, one"
echo "  dtk_session: connections pooled, libraries loaded once), as dtk-worker, dtk-dispatch and"
echo "  dtk run-tagged run checks; cpu = the process's user+sys over the checks it ran (start-up"
echo "  and the first connection included)"
for e in "${engines[@]}"; do
	awk -v e="$e" -v cpu="$(awk '{ print $1 + $2 }' "$OUT/warm_cpu_$e.txt")" '
		/^  checks / { n = $2 }
		/^  per check \(ms\)/ { med = $5 }
		END { printf "  %-10s  %d checks, median %.3f ms each, cpu %.3f ms per check  (target < 2 ms: %s)\n",
			e, n, med, cpu * 1000 / n, cpu * 1000 / n < 2 ? "met" : "NOT MET" }' "$OUT/warm_$e.txt"
done
