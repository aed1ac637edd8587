"""The numpy arithmetic of DetectK's zscore and mad detectors over a
4,320-point history (30 days of 10-minute points), in points per second:
the statistics alone, without DetectK's storage reads, pandas frames or JSON
context parsing. The counterpart of bench_detect's cases.

The functions are DetectK 0.1.1's (detectk_detectors 0.1.1
ZScoreDetector/MADDetector._compute_weights, _weighted_mean_std,
_weighted_median, _weighted_mad), copied so the baseline needs numpy only:
exponential weights exp(-0.1 * distance from the newest point) normalised to
sum 1, recomputed per call as DetectK does; the weighted median is argsort +
cumsum + searchsorted(0.5).

The series is bench_detect's: xorshift64 noise on a daily sine, timestamps
ending 2024-07-01T00:00Z; the hourly case keeps the points of the current
point's hour in Europe/Moscow (UTC+3), as bench_detect's does.

Usage: python numpy_kernels.py [--seconds S] [--json]
"""

import argparse
import json
import math
import sys
import time

import numpy as np

N_POINTS = 4320
STEP = 600
T_NOW = 1719792000  # 2024-07-01T00:00:00Z
MOSCOW = 3 * 3600
DECAY = 0.1
MASK64 = (1 << 64) - 1


def make_series() -> tuple[np.ndarray, np.ndarray]:
    s = 0x9E3779B97F4A7C15
    ts = np.empty(N_POINTS, dtype=np.int64)
    values = np.empty(N_POINTS)
    for i in range(N_POINTS):
        s ^= (s << 13) & MASK64
        s ^= s >> 7
        s ^= (s << 17) & MASK64
        noise = ((s >> 11) / 9007199254740992.0 - 0.5) * 40.0
        t = T_NOW - (N_POINTS - i) * STEP
        ts[i] = t
        values[i] = 1000.0 + 150.0 * math.sin(2 * math.pi * (t % 86400) / 86400.0) + noise
    return ts, values


def compute_weights(size: int) -> np.ndarray:
    weights = np.exp(-DECAY * np.arange(size)[::-1])
    return weights / weights.sum()


def weighted_mean_std(data: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    mean = np.sum(weights * data)
    variance = np.sum(weights * (data - mean) ** 2)
    return float(mean), float(np.sqrt(variance))


def weighted_median(data: np.ndarray, weights: np.ndarray) -> float:
    sorted_idx = np.argsort(data)
    cumsum = np.cumsum(weights[sorted_idx])
    return float(data[sorted_idx][np.searchsorted(cumsum, 0.5)])


def weighted_mad(data: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    median = weighted_median(data, weights)
    mad = weighted_median(np.abs(data - median), weights)
    return median, 1.4826 * mad


def zscore(values: np.ndarray, value: float) -> float:
    mean, std = weighted_mean_std(values, compute_weights(len(values)))
    return abs(value - mean) / std


def mad(values: np.ndarray, value: float) -> float:
    median, sigma = weighted_mad(values, compute_weights(len(values)))
    return abs(value - median) / sigma


def mad_hourly(values: np.ndarray, ts: np.ndarray, t_now: int, value: float) -> float:
    # the hours are derived per call, as bench_detect derives them from timestamps
    hours = ((ts + MOSCOW) % 86400) // 3600
    return mad(values[hours == ((t_now + MOSCOW) % 86400) // 3600], value)


def timed(fn, budget: float) -> float:
    """Seconds per call: batches until the budget is spent."""
    runs, batch = 0, 16
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        runs += batch
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / runs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.5, help="time budget per case")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    ts, values = make_series()
    value = 1210.0
    cases = [
        ("zscore_weighted", lambda: zscore(values, value)),
        ("mad_weighted", lambda: mad(values, value)),
        ("mad_weighted_hour_of_day", lambda: mad_hourly(values, ts, T_NOW, value)),
    ]
    if not a.json:
        print(f"numpy {np.__version__}, history {N_POINTS} points, one thread")
    for name, fn in cases:
        per_run = timed(fn, a.seconds)
        row = {
            "case": name,
            "points_per_s": N_POINTS / per_run,
            "ns_per_run": per_run * 1e9,
            "score": fn(),
            "history_points": N_POINTS,
        }
        if a.json:
            print(json.dumps(row))
        else:
            print(f"{name:<26} {row['points_per_s']:>14.0f} points/s {row['ns_per_run']:>12.0f} ns/run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
