"""DetectK's in-process check rate: MetricCheck().execute(CONFIG, T) in a
loop on one thread, the counterpart of bench_check (dtk_check_run).

Usage: python detectk_checks.py CONFIG [--time "YYYY-MM-DD HH:MM:SS"]
                                [--seconds S] [--min-checks N] [--json]
Run from the fixture directory (relative sqlite:/// paths). Each execute()
loads the YAML, collects one point, stores it, reads the 30-day history
once per detector, runs threshold, weighted zscore and seasonal weighted
mad, and builds the result: DetectK's whole pipeline, as `dtk run` does it.
"""

import argparse
import json
import statistics
import sys
import time
from datetime import datetime

import detectk_compat  # noqa: F401
from detectk.check import MetricCheck


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--time", default="2024-11-02 00:10:00")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--min-checks", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    when = datetime.fromisoformat(a.time)
    checker = MetricCheck()

    first = checker.execute(a.config, execution_time=when)  # warm-up, and proof it works
    if first.errors:
        print("detectk check failed: " + "; ".join(first.errors), file=sys.stderr)
        return 1

    durations = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        checker.execute(a.config, execution_time=when)
        durations.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if elapsed >= a.seconds and len(durations) >= a.min_checks:
            break
    out = {
        "checks": len(durations),
        "seconds": elapsed,
        "checks_per_sec": len(durations) / elapsed,
        "median_ms": statistics.median(durations) * 1e3,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(
            f"detectk MetricCheck.execute: {out['checks']} checks in {elapsed:.2f} s, "
            f"{out['checks_per_sec']:.1f} checks/s, median {out['median_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
