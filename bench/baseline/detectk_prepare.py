"""Fills DetectK's history for the bench: 30 days before FINISH, read by
DetectK's own sql collector (one collect_bulk over the range) and written by
its storage (detectk_compat's save_datapoints_bulk), the way DetectK's docs
describe bulk loading. Idempotent: rows are replaced, not duplicated.

Usage: python detectk_prepare.py CONFIG START FINISH   (ISO times, UTC naive)
Run from the fixture directory (relative sqlite:/// paths).
"""

import sys
from datetime import datetime

import detectk_compat  # noqa: F401
from detectk.config import ConfigLoader
from detectk.registry import CollectorRegistry, StorageRegistry


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, start, finish = sys.argv[1], sys.argv[2], sys.argv[3]
    config = ConfigLoader().load_file(path)
    collector = CollectorRegistry.get(config.collector.type)(config.collector.params)
    points = collector.collect_bulk(
        period_start=datetime.fromisoformat(start), period_finish=datetime.fromisoformat(finish)
    )
    storage = StorageRegistry.get(config.storage.type)(config.storage.params)
    storage.save_datapoints_bulk(config.name, points)
    print(f"detectk history: {len(points)} points for {config.name}")
    return 0 if points else 1


if __name__ == "__main__":
    sys.exit(main())
