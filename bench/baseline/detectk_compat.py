"""The smallest set of patches that lets DetectK 0.1.1 run the bench check.

Imported by the other DetectK baseline scripts before DetectK runs. Unpatched,
DetectK 0.1.1 cannot run a SQL-collected check with SQL storage at all:

1. `dtk run` never imports detectk_sql, so the `sql` collector is "not found".
   Fix: import it (registers the `sql` collector and storage).
2. detectk_sql.SQLStorage does not implement the abstract methods
   save_datapoints_bulk and get_last_loaded_timestamp that MetricCheck and
   BaseStorage require, so every instantiation raises TypeError and all
   three detectors run without storage (and fail). Fix: a subclass with the
   two methods, registered as `sql` in its place. save_datapoints_bulk
   replaces the rows of the same (metric_name, collected_at) in one
   transaction, so re-running one execution time overwrites instead of
   piling duplicates into the baseline (DetectK-C's storage contract).
3. MetricCheck calls detector.detect() without the datapoint's context, so a
   detector with seasonal_features always fails with "Seasonal features
   ['hour_of_day'] not found in current context" (after loading and parsing
   the whole history). Fix: zscore and mad subclasses that fill a missing
   calendar feature from the point's timestamp (hour_of_day, day_of_week),
   which is what the collector's hour_of_day context column holds.
4. SQLStorage.query_datapoints binds the point's timestamp, a
   pandas.Timestamp from the sql collector, straight into a textual query;
   Python's sqlite3 cannot bind that type ("Error binding parameter 2: type
   'Timestamp' is not supported"), so every history read fails. Fix: pass it
   on as a plain datetime.

Nothing else is changed: config loading, collection, storage queries, the
pandas/numpy statistics and result building are DetectK's own code.
`dtk run` still exits 1 after the check (its printer reads a
CheckResult.timestamp that does not exist); the check has completed by then.
"""

import json
from datetime import datetime
from typing import Any

import detectk_detectors  # noqa: F401  (registers threshold, zscore, mad, ...)
import detectk_sql  # noqa: F401  (registers the sql collector and storage)
from detectk.models import DataPoint
from detectk.registry import DetectorRegistry, StorageRegistry
from detectk_detectors.mad import MADDetector
from detectk_detectors.zscore import ZScoreDetector
from detectk_sql.storage import DtkDatapoint, SQLStorage
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session


def _json_default(obj: Any) -> Any:
    # numpy scalars from pandas rows (item() gives the Python value)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


class CompatSQLStorage(SQLStorage):
    """SQLStorage plus the two abstract methods DetectK 0.1.1 left out, and
    history reads that accept the timestamps its own collector produces."""

    def save_datapoints_bulk(self, metric_name: str, datapoints: list[DataPoint]) -> None:
        if not datapoints:
            return
        rows = [
            {
                "metric_name": metric_name,
                "collected_at": dp.timestamp,
                "value": dp.value if dp.value is not None else 0.0,
                "context": json.dumps(dp.metadata, default=_json_default) if dp.metadata else None,
            }
            for dp in datapoints
        ]
        with Session(self._get_engine()) as session:
            session.execute(
                delete(DtkDatapoint).where(
                    DtkDatapoint.metric_name == metric_name,
                    DtkDatapoint.collected_at.in_([r["collected_at"] for r in rows]),
                )
            )
            session.execute(insert(DtkDatapoint), rows)
            session.commit()

    def query_datapoints(self, metric_name: str, window: str | int, end_time: datetime | None = None):
        if hasattr(end_time, "to_pydatetime"):
            end_time = end_time.to_pydatetime()
        return super().query_datapoints(metric_name, window, end_time)

    def get_last_loaded_timestamp(self, metric_name: str) -> datetime | None:
        with Session(self._get_engine()) as session:
            return session.execute(
                select(func.max(DtkDatapoint.collected_at)).where(
                    DtkDatapoint.metric_name == metric_name
                )
            ).scalar()


def _with_calendar(features: list[str], timestamp: datetime, context: dict[str, Any]) -> dict:
    filled = dict(context)
    for name in features:
        if name not in filled:
            if name == "hour_of_day":
                filled[name] = timestamp.hour
            elif name == "day_of_week":
                filled[name] = timestamp.weekday()
    return filled


class CompatZScoreDetector(ZScoreDetector):
    def detect(self, metric_name: str, value: float | None, timestamp: datetime, **context: Any):
        context = _with_calendar(self.seasonal_features, timestamp, context)
        return super().detect(metric_name, value, timestamp, **context)


class CompatMADDetector(MADDetector):
    def detect(self, metric_name: str, value: float | None, timestamp: datetime, **context: Any):
        context = _with_calendar(self.seasonal_features, timestamp, context)
        return super().detect(metric_name, value, timestamp, **context)


# The registries refuse re-registration, so replace the entries directly.
StorageRegistry._components["sql"] = CompatSQLStorage
DetectorRegistry._components["zscore"] = CompatZScoreDetector
DetectorRegistry._components["mad"] = CompatMADDetector
