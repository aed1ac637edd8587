#!/usr/bin/env bash
# The fleet bench (bench/README.md, "The fleet"): dtk-dispatch --brokers --wait
# against 2 dtk-workers on the local Kafka broker, trivial checks (synthetic
# collector, threshold detector, storage and alerts off), against raw
# librdkafka produce-then-consume of messages of the same sizes; the latency
# at a steady rate (bench/fleet/latency); the Redis limiter against
# redis-benchmark PING (bench/bench_limiter), all measured in this one
# invocation. Prints one table; nothing asserts a timing.
#
#   bash bench/fleet.sh                 N=20000 requests, --concurrency 16
#   bash bench/fleet.sh --quick         N=2000, latency for 5 s, limiter 1 s
#   bash bench/fleet.sh -n N            N requests
#   bash bench/fleet.sh --concurrency C dtk-worker --concurrency C (16)
#   bash bench/fleet.sh --workers W     W dtk-worker processes (2)
#   bash bench/fleet.sh --kafka-prop K=V   passed to both workers (repeatable)
#   bash bench/fleet.sh --rate R --seconds S   latency at R checks/s for S s
#                                       (1000, 15)
#   bash bench/fleet.sh --latency-prop K=V   passed to the latency probe's
#                                       producer and results reader (repeatable)
#   bash bench/fleet.sh --only LIST     throughput (a, b, e), latency (c),
#                                       limiter (d); comma-separated
#
# Environment: DTK_BENCH_BUILD (default build-bench), DTK_SERVICES_DIR
# (default $DTK_BENCH_BUILD/services; kafka and redis already running there are
# reused and left running, the ones this script starts are stopped on exit).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DTK_BENCH_BUILD:-$ROOT/build-bench}
export DTK_SERVICES_DIR=${DTK_SERVICES_DIR:-$BUILD/services}
N=20000
CONC=16
WORKERS=2
PROPS=()
LPROPS=()
RATE=1000
SECONDS_C=15
LIMITER_S=3
ONLY=throughput,latency,limiter
while [ $# -gt 0 ]; do
	case $1 in
	--quick) N=2000 SECONDS_C=5 LIMITER_S=1 ;;
	-n) N=$2; shift ;;
	--concurrency) CONC=$2; shift ;;
	--workers) WORKERS=$2; shift ;;
	--kafka-prop) PROPS+=(--kafka-prop "$2"); shift ;;
	--latency-prop) LPROPS+=(--kafka-prop "$2"); shift ;;
	--rate) RATE=$2; shift ;;
	--seconds) SECONDS_C=$2; shift ;;
	--only) ONLY=$2; shift ;;
	-h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/fleet.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

for w in ${ONLY//,/ }; do
	case $w in
	throughput | latency | limiter) ;;
	*) echo "bench/fleet.sh: --only takes throughput, latency, limiter (got $w)" >&2; exit 2 ;;
	esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
KAFKA=0
if want throughput || want latency; then KAFKA=1; fi

step() { printf '\n== %s\n' "$*" >&2; }
now() { date +%s.%N; }

step "building $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTK_TESTS=OFF >/dev/null
ninja -C "$BUILD" dtk-dispatch dtk-worker raw_kafka latency bench_limiter >/dev/null
DISPATCH=$BUILD/dispatcher/dtk-dispatch
WORKER=$BUILD/worker/dtk-worker
RAW=$BUILD/bench/fleet/raw_kafka
LATENCY=$BUILD/bench/fleet/latency
LIMITER=$BUILD/bench/bench_limiter

# services: start what is not running, stop on exit only what we started
SERVICES=(redis)
[ $KAFKA = 1 ] && SERVICES=(kafka redis)
started=()
for s in "${SERVICES[@]}"; do
	# status exits 3 for a service that is down: read its line, not its exit
	# status (under pipefail a pipe into grep would fail exactly then)
	st=$("$ROOT/scripts/services.sh" status "$s" 2>/dev/null || true)
	case $st in *' down') started+=("$s") ;; esac
done
WORKER_PIDS=()
cleanup() {
	for p in "${WORKER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ ${#started[@]} -gt 0 ]; then
		"$ROOT/scripts/services.sh" stop "${started[@]}" >&2 || true
	fi
}
trap cleanup EXIT
step "services in $DTK_SERVICES_DIR (starting: ${started[*]:-none})"
"$ROOT/scripts/services.sh" start "${SERVICES[@]}" >&2
eval "$("$ROOT/scripts/services.sh" env "${SERVICES[@]}" 2>/dev/null)"
BROKERS=${DTK_KAFKA_BROKERS:-}

WORK=$BUILD/fleet-bench
OUT=$WORK/results
rm -rf "$WORK"
mkdir -p "$WORK/configs" "$OUT"
printf '%s\n' "${ONLY//,/ }" >"$OUT/only"
WALL_S= SELECT_S=0 IDLE= PEAK= CPU_W= CPU_D=
if [ $KAFKA = 1 ]; then
RID=fb$(date +%s)$$
T=(--topic "$RID.req" --results-topic "$RID.res" --dlq-topic "$RID.dlq")
export DTK_SIGNING_KEY=bench-key DTK_SIGNING_KEYS=bench-key

step "writing $N configs (synthetic, threshold, storage off) and 1 warm-up config"
python3 - "$WORK/configs" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
body = ('name: {name}\ntags: [{tag}]\n'
        'collector: {{type: synthetic, params: {{base: 100}}}}\n'
        'detector: {{type: threshold, params: {{threshold: 1000}}}}\n'
        'storage: {{enabled: false}}\n'
        'schedule: {{interval: "10 minutes", timeout: "10 minutes"}}\n')
os.makedirs(os.path.join(d, "bench"))
os.makedirs(os.path.join(d, "warm"))
for i in range(n):
    with open(os.path.join(d, "bench", "m%06d.yaml" % i), "w") as f:
        f.write(body.format(name="m%06d" % i, tag="bench"))
with open(os.path.join(d, "warm", "warm.yaml"), "w") as f:
    f.write(body.format(name="warm", tag="warm"))
PY

step "topics $RID.* (24 partitions) and the dispatcher's selection alone"
"$DISPATCH" --brokers "$BROKERS" "${T[@]}" --create-topics --config-dir "$WORK/configs/warm" \
	--tags warm --no-store --no-alerts >&2
s=$(now)
"$DISPATCH" --brokers "$BROKERS" "${T[@]}" --config-dir "$WORK/configs/bench" --tags bench \
	--dry-run >/dev/null
e=$(now)
SELECT_S=$(echo "$e - $s" | bc -l)

step "$WORKERS workers, --concurrency $CONC ${PROPS[*]:-}"
for w in $(seq "$WORKERS"); do
	"$WORKER" --brokers "$BROKERS" "${T[@]}" --group "$RID.g" --concurrency "$CONC" \
		--log-level "${DTK_BENCH_LOG_LEVEL:-info}" "${PROPS[@]}" 2>"$WORK/worker$w.log" &
	WORKER_PIDS+=($!)
done
for i in $(seq 300); do
	j=0
	for w in $(seq "$WORKERS"); do grep -q 'partitions assigned' "$WORK/worker$w.log" && j=$((j + 1)); done
	[ $j = "$WORKERS" ] && break
	sleep 0.1
done
# the warm-up request (published above) is done once all have joined
sleep 2
rss() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# each_worker FN ARGS: FN's output for every worker, comma-separated
each_worker() {
	local out=() p
	for p in "${WORKER_PIDS[@]}"; do out+=("$("$@" "$p")"); done
	local IFS=,
	echo "${out[*]}"
}
rss_of() { rss "$2" "$1"; }
IDLE=$(each_worker rss_of VmRSS)
echo "idle VmRSS (kB): $IDLE" >&2

fi

if want throughput; then
step "(a) dtk-dispatch --wait: $N requests, first publish to last result"
cpu() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
cpu_sum() { each_worker cpu | tr , '\n' | paste -sd+ | bc -l; }
C0=$(cpu_sum)
s=$(now)
rc=0
/usr/bin/time -f '%U %S' -o "$OUT/dispatch.cpu" ${DTK_BENCH_DISPATCH_PREFIX:-} "$DISPATCH" --brokers "$BROKERS" "${T[@]}" --config-dir "$WORK/configs/bench" --tags bench \
	--wait --timeout 3600 --no-store --no-alerts --output json >"$OUT/dispatch.json" || rc=$?
e=$(now)
WALL_S=$(echo "$e - $s" | bc -l)
CPU_W=$(echo "$(cpu_sum) - $C0" | bc -l)
CPU_D=$(awk '{ print $1 + $2 }' "$OUT/dispatch.cpu")
PEAK=$(each_worker rss_of VmHWM)
# CPU seconds by thread name in each worker (where a check's CPU goes:
# librdkafka's rdk:* threads or the check pool). Threads of one name are
# numbered in creation order: the worker creates its producer, then its
# consumer, so rdk:broker1#1 is the producer's broker thread.
for p in "${WORKER_PIDS[@]}"; do
	for t in $(ls /proc/"$p"/task | sort -n); do
		sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (([^ ]+ ){10})([0-9]+) ([0-9]+).*/\1 \4 \5/' \
			"/proc/$p/task/$t/stat"
	done | awk -v pid="$p" -v hz="$(getconf CLK_TCK)" '
		$1 == "dtk-worker" { c["dtk-worker (main and pool)"] += ($2 + $3) / hz; next }
		{ k = $1 "#" (++seen[$1]); c[k] += ($2 + $3) / hz }
		END { for (k in c) printf "worker %s thread %s: %.2f s CPU\n", pid, k, c[k] }' |
		sort | tee -a "$OUT/threads.txt" >&2
done
echo "dtk-dispatch exit $rc, wall $WALL_S s; peak VmHWM (kB): $PEAK" >&2
grep -c '"check finished"' "$WORK"/worker*.log >&2 || true
grep -c 'pool full: partitions paused' "$WORK/worker1.log" >&2 || true

step "message sizes on $RID.req and $RID.res"
"$RAW" sizes "$BROKERS" "$RID.req" 200 | tee "$OUT/req_sizes.json" >&2
"$RAW" sizes "$BROKERS" "$RID.res" 200 | tee "$OUT/res_sizes.json" >&2
size_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d["value_bytes"]+d["header_bytes"]))' "$1"; }
REQ_B=$(size_of "$OUT/req_sizes.json") RES_B=$(size_of "$OUT/res_sizes.json")

step "(b) raw librdkafka: $N x $REQ_B B then $N x $RES_B B, produce then consume in a group"
"$RAW" hop "$BROKERS" "$RID.raw.req" "$N" "$REQ_B" 24 | tee "$OUT/raw_req.json" >&2
"$RAW" hop "$BROKERS" "$RID.raw.res" "$N" "$RES_B" 24 | tee "$OUT/raw_res.json" >&2
fi

if want latency; then
	step "(c) latency: $RATE requests/s for $SECONDS_C s through the same $WORKERS workers ${LPROPS[*]:-}"
	"$LATENCY" --brokers "$BROKERS" "${T[@]:0:4}" --config-dir "$WORK/configs/bench" \
		--rate "$RATE" --seconds "$SECONDS_C" --samples "$OUT/latency_samples.txt" "${LPROPS[@]}" |
		tee "$OUT/latency.json" >&2 ||
		echo "bench/fleet.sh: latency failed" >&2
fi

if want limiter; then
	step "(d) limiter: redis-benchmark PING, then bench_limiter, on $DTK_REDIS_URL"
	hp=${DTK_REDIS_URL#redis://}
	hp=${hp%%/*}
	for c in 1 16; do
		redis-benchmark -h "${hp%:*}" -p "${hp##*:}" -t ping -n $((LIMITER_S * 30000)) \
			-c $c --csv | tee "$OUT/ping_c$c.csv" >&2
	done
	"$LIMITER" --redis "$DTK_REDIS_URL" --seconds "$LIMITER_S" --threads 16 |
		tee "$OUT/limiter.json" >&2 || echo "bench/fleet.sh: bench_limiter failed" >&2
fi

step "results (raw JSON in $OUT)"
python3 - "$OUT" "$N" "$CONC" "$WALL_S" "$SELECT_S" "$IDLE" "$PEAK" "$CPU_W" "$CPU_D" "$WORKERS" <<'PY'
import csv, json, os, statistics, sys
out, n, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
only = open(os.path.join(out, "only")).read().split()
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None
rows = []
def row(m, o, b, r, t, res):
    rows.append((m, o, b, r, t, res))
d = None
if "throughput" in only:
    wall, select = float(sys.argv[4]), float(sys.argv[5])
    idle = [int(x) for x in sys.argv[6].split(",")]
    peak = [int(x) for x in sys.argv[7].split(",")]
    cpu_w, cpu_d = float(sys.argv[8]), float(sys.argv[9])
    d = load("dispatch.json")
    rq, rs = load("raw_req.json"), load("raw_res.json")
    raw_s = rq["produce_s"] + rq["consume_s"] + rs["produce_s"] + rs["consume_s"]
    ours = n / wall
    raw = n / raw_s
    row(f"(a) checks/s, dispatch --wait, {sys.argv[10]} workers", f"{ours:,.0f} /s", f"{raw:,.0f} /s", f"{ours/raw:.3f}",
        ">= 20,000 /s", "met" if ours >= 20000 else "NOT MET")
    row("    without the selection (dry-run time)", f"{n/max(wall-select,1e-9):,.0f} /s", "", "", "", "")
    row("    CPU per check: workers, dispatcher", f"{cpu_w/n*1e6:.0f} us, {cpu_d/n*1e6:.0f} us", "", "", "", "")
    row("(b) raw librdkafka, req hop + result hop", f"{raw:,.0f} /s", "", "", "", "")
    row("    request hop (produce, consume)", f"{rq['produce_s']:.2f} s, {rq['consume_s']:.2f} s", f"{rq['size']} B", "", "", "")
    row("    result hop (produce, consume)", f"{rs['produce_s']:.2f} s, {rs['consume_s']:.2f} s", f"{rs['size']} B", "", "", "")
    for i in range(len(idle)):
        row(f"(e) worker {i+1} VmRSS idle, c={conc}", f"{idle[i]/1024:.1f} MB", "", "", "<= 32 MB", "met" if idle[i] <= 32768 else "NOT MET")
        row(f"(e) worker {i+1} VmHWM, backlog of {n}", f"{peak[i]/1024:.1f} MB", "", "", "<= 32 MB", "met" if peak[i] <= 32768 else "NOT MET")
lat = load("latency.json") if "latency" in only else None
if lat:
    ms = lambda k: "-" if lat[k] is None else f"{lat[k]:.1f} ms"
    ok = lat["p99_ms"] is not None and lat["p99_ms"] <= 50 and lat["missing"] == 0
    row(f"(c) p50/p99 latency at {lat['rate']:,.0f}/s", f"{ms('p50_ms')}, {ms('p99_ms')}", "", "",
        "p99 <= 50 ms", "met" if ok else "NOT MET")
    row("    p90, max, mean", f"{ms('p90_ms')}, {ms('max_ms')}, {ms('mean_ms')}", "", "", "", "")
    row("    results of sent, achieved rate",
        f"{lat['results']:,} of {lat['sent']:,}, {lat['achieved_rate']:,.0f} /s", "", "", "", "")
    row("    timings_ms.queued p50, p99", f"{ms('queued_p50_ms')}, {ms('queued_p99_ms')}", "", "", "", "")
elif "latency" in only:
    row("(c) p50/p99 latency", "failed (see the log)", "", "", "p99 <= 50 ms", "n/a")
lim = load("limiter.json") if "limiter" in only else None
if lim:
    def ping_us(c):
        for r in csv.DictReader(open(os.path.join(out, f"ping_c{c}.csv"))):
            if r["test"] == "PING_MBULK":
                return float(r["p50_latency_ms"]) * 1000, float(r["avg_latency_ms"]) * 1000
    for key, c in (("single", 1), ("parallel", lim["threads"])):
        pair = lim["pair"][key]
        p50, avg = ping_us(c)
        row(f"(d) limiter pair / PING, {c} thread{'s' if c > 1 else ''}",
            f"p50 {pair['p50_us']:.0f} us, mean {pair['mean_us']:.0f}",
            f"p50 {p50:.0f} us, mean {avg:.0f} (-c {c})", f"{pair['p50_us']/p50:.1f}", "", "-")
    row("    pairs/s, 1 and %d threads" % lim["threads"],
        f"{lim['pair']['single']['per_s']:,.0f}, {lim['pair']['parallel']['per_s']:,.0f}", "", "", "", "")
    row("    PING via dtk_redis, 1 and %d threads" % lim["threads"],
        f"{lim['ping']['single']['mean_us']:.0f} us, {lim['ping']['parallel']['mean_us']:.0f} us", "", "", "", "")
elif "limiter" in only:
    row("(d) limiter pair / PING", "failed (see the log)", "", "", "", "n/a")
hdr = ("measurement", "ours", "baseline", "ratio", "target", "result")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(6)]
fmt = "  ".join("{:<%d}" % x for x in w)
print(fmt.format(*hdr).rstrip())
print("  ".join("-" * x for x in w))
for r in rows:
    print(fmt.format(*r).rstrip())
print()
if d:
    s = d["summary"]
    print(f"N = {n}; dispatch summary: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    print(f"dtk-dispatch --wait wall {wall:.2f} s (its selection of {n} configs alone, --dry-run: {select:.2f} s)")
    q = sorted(r["timings_ms"]["queued"] for r in d["results"])
    tot = sorted(r["timings_ms"]["total"] for r in d["results"])
    if q:
        print(f"results: timings_ms.queued median {statistics.median(q):.0f} ms, max {q[-1]:.0f}; "
              f"timings_ms.total median {statistics.median(tot):.3f} ms")
if lat:
    print(f"latency: {lat['sent']} requests paced at {lat['rate']:.0f}/s (largest produce lag "
          f"{lat['max_produce_lag_ms']:.1f} ms), {lat['results']} results, {lat['missing']} missing, "
          f"{lat['not_ok']} not ok; each from just before its produce to its result read")
if lim:
    print("limiter: acquire + release on one key (limit 1000, never full), each pair timed; PING: "
          "redis-benchmark -t ping, PING_MBULK, with 1 and %d clients; ratio of the medians" % lim["threads"])
print("ratio: ours / baseline, both measured in this run.")
print("machine: %s, %d cpus, load average %s" % (os.uname().machine, os.cpu_count(),
      " ".join("%.2f" % x for x in os.getloadavg())))
PY
