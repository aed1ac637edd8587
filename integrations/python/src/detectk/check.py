"""Running one check through libdtk: `MetricCheck().execute(path)` is
`dtk run PATH --output json` in-process (collect, store, detect, alert)."""

import copy
import datetime as _dt
import json
import math

from . import _lib

_UTC = _dt.timezone.utc


def _parse_time(s):
    """An RFC 3339 / ISO 8601 text as an aware UTC datetime (naive = UTC)."""
    text = s.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_UTC)
    return d.astimezone(_UTC)


def _epoch_seconds(t):
    """execution_time as UTC epoch seconds: a datetime (naive = UTC), a
    date, an ISO 8601 string or a number of epoch seconds."""
    if isinstance(t, bool):
        raise TypeError("execution_time must be a datetime, an ISO 8601 string or epoch seconds")
    if isinstance(t, _dt.datetime):
        d = t if t.tzinfo is not None else t.replace(tzinfo=_UTC)
    elif isinstance(t, _dt.date):
        d = _dt.datetime(t.year, t.month, t.day, tzinfo=_UTC)
    elif isinstance(t, str):
        try:
            d = _parse_time(t)
        except ValueError:
            raise ValueError("execution_time %r is not an ISO 8601 time" % t) from None
    elif isinstance(t, (int, float)):
        if not math.isfinite(t):
            raise ValueError("execution_time must be finite")
        return int(math.floor(t))
    else:
        raise TypeError("execution_time must be a datetime, an ISO 8601 string or epoch "
                        "seconds, not %s" % type(t).__name__)
    delta = d - _dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return delta.days * 86400 + delta.seconds  # floor to the second


def _time_or_none(s):
    return _parse_time(s) if isinstance(s, str) else None


class Detection:
    """One detector's verdict (an element of the result's "detections")."""

    __slots__ = ("detector_id", "detector_type", "is_anomaly", "score", "lower_bound",
                 "upper_bound", "direction", "percent_deviation", "skipped", "metadata")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d.get(k))
        self.is_anomaly = bool(self.is_anomaly)
        self.metadata = d.get("metadata") or {}

    def __repr__(self):
        return ("Detection(detector_id=%r, detector_type=%r, is_anomaly=%r, score=%r, "
                "direction=%r, lower_bound=%r, upper_bound=%r)" % (
                    self.detector_id, self.detector_type, self.is_anomaly, self.score,
                    self.direction, self.lower_bound, self.upper_bound))


class CheckResult:
    """The check result v1 object (docs/fleet.md) with attribute access.
    to_dict() returns the JSON object itself, as `dtk run --output json`
    prints it."""

    def __init__(self, doc):
        self._doc = doc
        dp = doc.get("datapoint") or {}
        alert = doc.get("alert") or {}
        self.metric_name = doc.get("metric")
        self.status = doc.get("status")
        self.execution_time = _time_or_none(doc.get("execution_time"))
        self.requested_time = _time_or_none(doc.get("requested_time"))
        self.timestamp = _time_or_none(dp.get("timestamp"))
        self.value = dp.get("value")
        self.is_missing = bool(dp.get("is_missing")) if dp else True
        self.context = dp.get("context") or {}
        self.detections = [Detection(d) for d in doc.get("detections") or []]
        self.alert_sent = bool(alert.get("sent"))
        self.alert_reason = alert.get("reason")
        self.suppressed_by = alert.get("suppressed_by")
        self.errors = list(doc.get("errors") or [])
        self.warnings = list(doc.get("warnings") or [])
        self.tags = list(doc.get("tags") or [])

    @property
    def is_anomaly(self):
        return self.status == "anomaly"

    @property
    def ok(self):
        """True unless the check failed (status "error")."""
        return self.status != "error"

    @property
    def error_messages(self):
        return ["%s: %s" % (e.get("stage"), e.get("message")) for e in self.errors]

    def to_dict(self):
        return copy.deepcopy(self._doc)

    def to_json(self):
        return json.dumps(self._doc)

    def __repr__(self):
        return "CheckResult(metric_name=%r, status=%r, timestamp=%r, value=%r, alert_sent=%r)" % (
            self.metric_name, self.status, self.timestamp, self.value, self.alert_sent)


class MetricCheck:
    """Runs checks of metric configs through libdtk."""

    def __init__(self):
        _lib.load()

    def execute(self, path, execution_time=None):
        """Runs the config at path at execution_time (aligned down to the
        metric's interval grid, as `dtk run -t`), or now. Returns a
        CheckResult; a failing check (source down, bad query) is a result
        with status "error" and the engine's messages in errors. Raises
        detectk.ConfigError when the config does not load
        (ConfigFileNotFoundError, also a FileNotFoundError, when the file
        is missing)."""
        t = None if execution_time is None else _epoch_seconds(execution_time)
        text = _lib.check_run_json(path, t)
        return CheckResult(json.loads(text))


__all__ = ["MetricCheck", "CheckResult", "Detection"]
