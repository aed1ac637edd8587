#!/usr/bin/env bash
# The bench command (bench/README.md): builds a Release tree in build-bench/,
# prepares the fixture once, measures DetectK-C and its baselines in this one
# invocation, and prints one table of ours vs baseline vs target.
#
#   bash bench/run.sh              full run (about 2-4 minutes once cached)
#   bash bench/run.sh --quick      shorter measurements, noisier numbers
#   bash bench/run.sh --no-detectk skip the DetectK baselines (no PyPI needed;
#                                  numpy then comes from the system python3)
#
# Environment: DTK_BENCH_BUILD (default build-bench), DTK_BENCH_VENV (default
# ${XDG_CACHE_HOME:-~/.cache}/dtk/bench-venv). Never part of ctest; nothing
# here asserts a timing, the table only reports.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1 # keep bench/baseline/ free of __pycache__

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DTK_BENCH_BUILD:-$ROOT/build-bench}
VENV=${DTK_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dtk/bench-venv}
REQ=$ROOT/bench/requirements-baseline.txt
BASE=$ROOT/bench/baseline
FIX=$BUILD/fixture
OUT=$BUILD/bench-results
T_OURS=2024-11-02T00:10:00Z       # the fixture's check time (bench_check.c)
T_DETECTK="2024-11-02 00:10:00"   # the same, as DetectK's -t wants it

quick=0
detectk=1
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	--no-detectk) detectk=0 ;;
	-h | --help)
		sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench/run.sh: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done

if ((quick)); then
	OURS_RUNS=50 DK_RUNS=5 CHECK_SECONDS=2 DK_SECONDS=4 KERNEL_SECONDS=0.2
else
	OURS_RUNS=300 DK_RUNS=15 CHECK_SECONDS=5 DK_SECONDS=10 KERNEL_SECONDS=0.5
fi

step() { printf '\n== %s\n' "$*" >&2; }

need_hyperfine() {
	command -v hyperfine >/dev/null && return
	step "installing hyperfine (Debian package)"
	if [ "$(id -u)" -eq 0 ]; then
		apt-get install -y hyperfine >/dev/null 2>&1 ||
			{ apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
	else
		sudo apt-get install -y hyperfine >/dev/null
	fi
}

# The baselines' virtualenv, reinstalled only when the requirements change.
need_venv() {
	local stamp want
	want=$(sha256sum "$REQ" | cut -d' ' -f1)
	stamp=$VENV/.requirements.sha256
	if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return
	fi
	step "installing the Python baselines into $VENV"
	mkdir -p "$(dirname "$VENV")"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
	echo "$want" >"$stamp"
}

need_hyperfine
if ((detectk)); then
	need_venv
	PY=$VENV/bin/python
else
	PY=python3
	"$PY" -c 'import numpy' 2>/dev/null || {
		echo "bench/run.sh: --no-detectk needs numpy in python3 (pip install numpy)" >&2
		exit 1
	}
fi

step "building $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTK_TESTS=OFF >/dev/null
ninja -C "$BUILD" >/dev/null
DTK=$BUILD/cli/dtk

step "preparing the fixture in $FIX"
rm -rf "$FIX" "$OUT"
mkdir -p "$OUT"
"$BUILD/bench/bench_check" --prepare "$FIX" --config "$ROOT/bench/fixtures/metric.yaml" >&2
if ((detectk)); then
	cp "$ROOT/bench/fixtures/detectk_metric.yaml" "$FIX/"
	(cd "$FIX" && "$PY" "$BASE/detectk_prepare.py" detectk_metric.yaml \
		2024-10-03T00:00:00 2024-11-02T00:00:00 >&2)
fi
cd "$FIX"
export DTK_STATE_DIR=$FIX
# one check each, shown once, so the log proves both did the work
"$DTK" run metric.yaml --no-alerts -t "$T_OURS" >&2

step "(a) dtk run, whole process: hyperfine, $OURS_RUNS runs"
hyperfine -N --style basic --warmup 10 --runs "$OURS_RUNS" --export-json "$OUT/run_ours.json" \
	"$DTK run metric.yaml --no-alerts -t $T_OURS" >&2
if ((detectk)); then
	step "(a) DetectK dtk run, whole process: hyperfine, $DK_RUNS runs (it always exits 1)"
	hyperfine -N -i --style basic --warmup 2 --runs "$DK_RUNS" \
		--export-json "$OUT/run_detectk.json" \
		"$PY $BASE/detectk_dtk.py run detectk_metric.yaml -t '$T_DETECTK'" >&2
fi

step "(b) checks/s through dtk_check_run: bench_check, ${CHECK_SECONDS} s"
"$BUILD/bench/bench_check" --fixture "$FIX" --seconds "$CHECK_SECONDS" --json |
	tee "$OUT/check_ours.json" >&2
if ((detectk)); then
	step "(b) DetectK MetricCheck.execute: ${DK_SECONDS} s"
	"$PY" "$BASE/detectk_checks.py" detectk_metric.yaml --time "$T_DETECTK" \
		--seconds "$DK_SECONDS" --json | tee "$OUT/check_detectk.json" >&2
fi

step "(c) detector kernels: bench_detect and numpy, ${KERNEL_SECONDS} s per case"
"$BUILD/bench/bench_detect" --json --seconds "$KERNEL_SECONDS" | tee "$OUT/kernels_ours.jsonl" >&2
"$PY" "$BASE/numpy_kernels.py" --json --seconds "$KERNEL_SECONDS" |
	tee "$OUT/kernels_numpy.jsonl" >&2

step "results (raw JSON in $OUT)"
"$PY" - "$OUT" <<'EOF'
import json, os, platform, sys

out = sys.argv[1]

def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        if name.endswith(".jsonl"):
            return {r["case"]: r for r in map(json.loads, filter(str.strip, f))}
        return json.load(f)

def median_ms(h):
    return h["results"][0]["median"] * 1e3 if h else None

run_ours, run_dk = median_ms(load("run_ours.json")), median_ms(load("run_detectk.json"))
chk_ours, chk_dk = load("check_ours.json"), load("check_detectk.json")
k_ours, k_np = load("kernels_ours.jsonl") or {}, load("kernels_numpy.jsonl") or {}

rows = []  # measurement, ours, baseline, baseline name, ratio, target, met

def row(name, ours, base, base_name, unit, lower_is_better, target):
    fmt = (lambda v: f"{v:.2f} {unit}") if unit == "ms" else (lambda v: f"{v:,.1f} {unit}")
    if ours is None:
        rows.append((name, "n/a", "", "", "", "", ""))
        return
    ratio = ""
    if base:
        ratio = f"{base / ours:,.1f}x" if lower_is_better else f"{ours / base:,.1f}x"
    met = ""
    if target is not None:
        ok = ours <= target if lower_is_better else ours >= target
        met = "met" if ok else "NOT MET"
    tgt = "" if target is None else (f"<= {target:g} {unit}" if lower_is_better else f">= {target:,g} {unit}")
    rows.append((name, fmt(ours), fmt(base) if base else "-", base_name if base else "", ratio, tgt, met))

row("(a) dtk run, whole process, median", run_ours, run_dk, "DetectK dtk run", "ms", True, 10)
row("(b) checks/s, one thread", chk_ours and chk_ours["checks_per_s"],
    chk_dk and chk_dk["checks_per_sec"], "DetectK MetricCheck.execute", "/s", False, 1000)
targets = {"zscore_weighted": 50, "mad_weighted": 20, "mad_weighted_hour_of_day": None}
for case, target in targets.items():
    ours = k_ours.get(case)
    mp = (lambda r, key="points_per_s": r[key] / 1e6 if r else None)
    row(f"(c) {case}, 4,320 pts", mp(ours), mp(k_np.get(case)), "numpy (DetectK's math)",
        "Mpts/s", False, target)
    row(f"    {case}", mp(ours), mp(ours, "baseline_points_per_s") if ours else None,
        "naive C (bench_detect)", "Mpts/s", False, None)

heads = ("measurement", "ours", "baseline", "baseline is", "ratio", "target", "result")
widths = [max(len(str(r[i])) for r in rows + [heads]) for i in range(len(heads))]
line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
print(line(heads))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r))
print()
print("ratio: how many times faster ours is than the baseline, measured in this run.")
if chk_ours:
    t = chk_ours["timings_ms_median"]
    print("dtk_check_run stage medians (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))
print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load average "
      + " ".join(f"{x:.2f}" for x in os.getloadavg()))
EOF
