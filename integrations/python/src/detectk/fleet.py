"""Publishing check requests to the fleet and waiting for their results:
`dispatch(...)` is `dtk-dispatch --brokers` in-process, through libdtk-fleet
(core/fleet/capi.h): the same selection as `dtk run-tagged`, the same request
messages (built, signed and produced by the C library, every delivery
confirmed), and `wait_results(...)` reads the results topic as
`dtk-dispatch --wait` does.

    from detectk.fleet import dispatch, iter_results, wait_results

    with dispatch("configs", tags=["hourly"], brokers="localhost:9092") as d:
        print(d.dispatch_id, d.published)
        for result in iter_results(d, timeout=120):     # as they arrive
            print(result["metric"], result["status"])
    # or: results = wait_results(d, timeout=120)       # all at once, in request order
"""

import ctypes
import datetime as _dt
import json
import logging
import os
import threading
import time
import weakref

from . import _lib
from .check import _epoch_seconds
from .errors import ConfigFileNotFoundError, DetectKError, DispatchError, ResultsTimeout

log = logging.getLogger("detectk.fleet")

# dtk-dispatch --wait without --timeout: the slowest config's
# schedule.timeout plus this (dispatcher/fleet.c WAIT_MARGIN_S)
WAIT_MARGIN_S = 30
_ERRSTR_SIZE = 4096


def _names(value, what):
    """A list of non-empty strings from a list or a comma-separated string
    (as dtk-dispatch splits --tags a,b)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    out = []
    for v in value:
        if not isinstance(v, str):
            raise TypeError("%s must be strings, not %s" % (what, type(v).__name__))
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _iso(secs):
    return _dt.datetime.fromtimestamp(secs, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_handle(lib, ptr):
    lib.dtk_fleet_handle_free(ctypes.byref(ctypes.c_void_p(ptr)))


class Dispatch:
    """One dispatch: its requests as published, and the C handle that
    reads their results (the producer stays open until close()).

    dispatch_id, published (requests delivered to Kafka), requests
    ([{"path", "metric", "request_id", "execution_time", "timeout",
    "partition", "offset", "error"}], error None when delivered),
    undelivered (the requests with an error), invalid ([{"path", "error"}]:
    configs that did not load; the others were published anyway), topic,
    results_topic, signed. Use as a context manager, or call close()."""

    def __init__(self, lib, handle, report):
        self._lib = lib
        self._handle = handle
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _free_handle, lib, handle)
        self.dispatch_id = report["dispatch_id"]
        self.topic = report["topic"]
        self.results_topic = report["results_topic"]
        self.signed = report["signed"]
        self.published = report["published"]
        self.requests = []
        for r in report["requests"]:
            r = dict(r)
            r["execution_time"] = _iso(r["execution_time"])
            self.requests.append(r)
        self.invalid = list(report["invalid"])

    @property
    def id(self):
        return self.dispatch_id

    @property
    def delivered(self):
        return [r for r in self.requests if r["error"] is None]

    @property
    def undelivered(self):
        return [r for r in self.requests if r["error"] is not None]

    @property
    def default_timeout(self):
        """dtk-dispatch --wait's default: the slowest schedule.timeout + 30 s."""
        return max([r["timeout"] for r in self.delivered] or [0]) + WAIT_MARGIN_S

    def wait(self, timeout=None, raise_on_timeout=True):
        return wait_results(self, timeout=timeout, raise_on_timeout=raise_on_timeout)

    def close(self):
        """Closes the producer; the dispatch can no longer wait. Idempotent."""
        with self._lock:
            self._finalizer()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Dispatch(dispatch_id=%r, published=%d, undelivered=%d, invalid=%d)" % (
            self.dispatch_id, self.published, len(self.undelivered), len(self.invalid))


def _selection_opts(config_dir, tags, exclude_tags, match_all, metric, due, execution_time,
                    profiles, need_selection=True):
    tags = _names(tags, "tags")
    exclude = _names(exclude_tags, "exclude_tags")
    if need_selection and not (tags or exclude or metric or due):
        raise ValueError("select configs with tags, exclude_tags, metric or due")
    if config_dir is None:
        raise ValueError("config_dir is required")
    opts = {"config_dir": os.fsdecode(os.fspath(config_dir)), "tags": tags,
            "exclude_tags": exclude, "match_all": bool(match_all), "due": bool(due),
            "metric": metric}
    if execution_time is not None:
        opts["execution_time"] = _epoch_seconds(execution_time)
    if profiles is not None:
        opts["profiles"] = os.fsdecode(os.fspath(profiles))
    return opts


def select(config_dir, tags=None, *, exclude_tags=None, match_all=False, metric=None, due=False,
           execution_time=None, profiles=None):
    """The configs dispatch() would publish, without Kafka (dtk-dispatch
    --dry-run): the engine's selection, shared with `dtk run-tagged`.
    No selection at all selects every config (as `dtk list-metrics`).
    Returns {"selected": [{"path", "metric", "tags", "interval",
    "interval_seconds", "timeout", "timezone"}], "invalid": [{"path",
    "error"}]}. Raises ConfigFileNotFoundError when config_dir does not
    exist, DetectKError when it cannot be read."""
    opts = _selection_opts(config_dir, tags, exclude_tags, match_all, metric, due,
                           execution_time, profiles, need_selection=False)
    lib = _lib.load_fleet()
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    ptr = lib.dtk_fleet_select_json(json.dumps(opts).encode("utf-8"), err, _ERRSTR_SIZE)
    if not ptr:
        msg = err.value.decode("utf-8", "replace") or "unknown error"
        if msg == "out of memory":
            raise MemoryError("detectk.fleet: " + msg)
        if not os.path.isdir(opts["config_dir"]):
            raise ConfigFileNotFoundError(msg, opts["config_dir"])
        raise DetectKError(msg)
    return json.loads(_lib.take_string(ptr))


def dispatch(config_dir, tags=None, *, brokers=None, exclude_tags=None, match_all=False,
             metric=None, due=False, execution_time=None, no_align=False, store=True,
             alerts=True, topic=None, results_topic=None, dlq_topic=None, kafka_props=None,
             profiles=None, signing_key=None, source=None, create_topics=False, partitions=None,
             replication_factor=None, track_results=True, request_timeout=None):
    """Publishes one check request per config under config_dir that the
    selection picks (tags, exclude_tags, match_all, metric, due: as
    dtk-dispatch's flags; one is needed) to brokers (default
    $DTK_KAFKA_BROKERS), signed with signing_key (default $DTK_SIGNING_KEY;
    "" = unsigned). execution_time (datetime, ISO 8601 string or epoch
    seconds; default now) is aligned per config unless no_align.

    Returns a Dispatch. Configs that do not load are in .invalid (and
    logged) and the others are still published. Raises
    ConfigFileNotFoundError when config_dir does not exist, DispatchError
    with the engine's message when nothing could be published (no broker
    reachable within request_timeout seconds, default 10, per round trip; a
    missing topic: create_topics=True creates them), ValueError or TypeError
    for bad arguments. With track_results (the default) the result topic's
    end offsets are recorded first, so wait_results() sees every result."""
    opts = _selection_opts(config_dir, tags, exclude_tags, match_all, metric, due,
                           execution_time, profiles)
    config_dir = opts["config_dir"]
    brokers = brokers or os.environ.get("DTK_KAFKA_BROKERS")
    if not brokers:
        raise ValueError("no Kafka brokers: pass brokers= or set DTK_KAFKA_BROKERS")
    opts.update({"brokers": brokers, "no_align": bool(no_align), "store": bool(store),
                 "alerts": bool(alerts), "topic": topic, "results_topic": results_topic,
                 "dlq_topic": dlq_topic, "kafka_props": _kafka_props(kafka_props),
                 "source": source, "create_topics": bool(create_topics),
                 "track_results": bool(track_results)})
    if signing_key is not None:
        opts["signing_key"] = signing_key
    if partitions is not None:
        opts["partitions"] = int(partitions)
    if replication_factor is not None:
        opts["replication_factor"] = int(replication_factor)
    if request_timeout is not None:
        opts["request_timeout_ms"] = max(1, int(float(request_timeout) * 1000))

    lib = _lib.load_fleet()
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    report_ptr = ctypes.c_void_p()
    handle = lib.dtk_fleet_dispatch_json(json.dumps(opts).encode("utf-8"),
                                         ctypes.byref(report_ptr), err, _ERRSTR_SIZE)
    report = json.loads(_lib.take_string(report_ptr.value)) if report_ptr.value else None
    if not handle:
        msg = err.value.decode("utf-8", "replace") or "unknown error"
        if msg == "out of memory":
            raise MemoryError("detectk.fleet: " + msg)
        if not os.path.isdir(config_dir):
            raise ConfigFileNotFoundError(msg, config_dir)
        invalid = (report or {}).get("invalid") or []
        for e in invalid:
            log.warning("config error: %s", e["error"])
        raise DispatchError(msg, invalid)
    d = Dispatch(lib, handle, report)
    for e in d.invalid:
        log.warning("config error: %s", e["error"])
    for r in d.undelivered:
        log.error("%s (request %s): %s", r["metric"], r["request_id"], r["error"])
    if not d.signed:
        log.warning("no signing key (DTK_SIGNING_KEY): the requests are unsigned (workers run "
                    "them only with --allow-unsigned)")
    log.info("dispatch %s: %d of %d requests published to %s", d.dispatch_id, d.published,
             len(d.requests), d.topic)
    return d


def _kafka_props(props):
    """{"name": value} or ["name=value"] as the C API's list."""
    if props is None:
        return []
    if isinstance(props, dict):
        return ["%s=%s" % (k, v) for k, v in props.items()]
    out = list(props)
    for p in out:
        if not isinstance(p, str) or "=" not in p:
            raise ValueError("kafka_props entries must be 'name=value' strings, got %r" % (p,))
    return out


def wait_results(handle, timeout=None, *, raise_on_timeout=True):
    """The results of handle's delivered requests (check result v1 dicts, as
    on the results topic), in the order of handle.delivered, each request's
    first result only; results of other dispatches are ignored.

    Waits at most timeout seconds (default: the slowest config's
    schedule.timeout + 30 s, as dtk-dispatch --wait). When some are still
    missing, raises ResultsTimeout naming them (e.missing, e.results), or
    with raise_on_timeout=False returns the list with None for each missing
    one. Raises DetectKError when the dispatch was closed or made with
    track_results=False."""
    if not isinstance(handle, Dispatch):
        raise TypeError("wait_results needs the Dispatch that dispatch() returned")
    if timeout is None:
        timeout = handle.default_timeout
    timeout_ms = max(0, int(float(timeout) * 1000))
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    with handle._lock:
        if handle._handle is None:
            raise DetectKError("dispatch %s is closed" % handle.dispatch_id)
        ptr = handle._lib.dtk_fleet_await_json(handle._handle, timeout_ms, err, _ERRSTR_SIZE)
    if not ptr:
        msg = err.value.decode("utf-8", "replace") or "unknown error"
        if msg == "out of memory":
            raise MemoryError("detectk.fleet: " + msg)
        raise DetectKError(msg)
    doc = json.loads(_lib.take_string(ptr))
    results = doc["results"]
    delivered = handle.delivered
    missing = [r for r, res in zip(delivered, results) if res is None]
    if missing and raise_on_timeout:
        raise _timeout(handle, missing, [r for r in results if r is not None], timeout_ms,
                       doc.get("error"))
    return results


def _timeout(handle, missing, got, timeout_ms, last_error):
    missing = [{"metric": r["metric"], "request_id": r["request_id"], "path": r["path"]}
               for r in missing]
    names = ", ".join("%s (request %s)" % (m["metric"], m["request_id"]) for m in missing)
    msg = "dispatch %s: no result within %g s for %d of %d requests: %s" % (
        handle.dispatch_id, timeout_ms / 1000.0, len(missing), len(handle.delivered), names)
    if last_error:
        msg += " (last consumer error: %s)" % last_error
    return ResultsTimeout(msg, missing, got, handle.dispatch_id)


def iter_results(handle, timeout=None, *, raise_on_timeout=True, poll_interval=1.0):
    """Yields the results of handle's delivered requests as they arrive
    (check result v1 dicts), each request's first result once, then stops
    when every request has one. Waits at most timeout seconds in all (the
    default as wait_results); when some are still missing, raises
    ResultsTimeout naming them (after yielding the others), or just stops
    with raise_on_timeout=False. The C reader is polled poll_interval
    seconds at a time, so KeyboardInterrupt and close() from another thread
    are seen between polls."""
    if not isinstance(handle, Dispatch):
        raise TypeError("iter_results needs the Dispatch that dispatch() returned")
    if timeout is None:
        timeout = handle.default_timeout
    timeout_ms = max(0, int(float(timeout) * 1000))
    deadline = time.monotonic() + timeout_ms / 1000.0
    step_ms = max(1, int(float(poll_interval) * 1000))
    pending = {r["request_id"]: r for r in handle.delivered}
    got, last_error = [], None
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    with handle._lock:
        if handle._handle is None:
            raise DetectKError("dispatch %s is closed" % handle.dispatch_id)
        if handle._lib.dtk_fleet_results_start(handle._handle, err, _ERRSTR_SIZE) != 0:
            raise DetectKError(err.value.decode("utf-8", "replace") or "unknown error")
    while pending:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            break
        with handle._lock:
            if handle._handle is None:
                raise DetectKError("dispatch %s is closed" % handle.dispatch_id)
            ptr = handle._lib.dtk_fleet_results_next_json(handle._handle, min(left_ms, step_ms),
                                                          err, _ERRSTR_SIZE)
        if not ptr:
            if err.value:
                last_error = err.value.decode("utf-8", "replace")
                if last_error == "out of memory":
                    raise MemoryError("detectk.fleet: " + last_error)
            continue
        r = json.loads(_lib.take_string(ptr))
        if pending.pop(r.get("request_id"), None) is not None:
            got.append(r)
            yield r
    if pending and raise_on_timeout:
        raise _timeout(handle, list(pending.values()), got, timeout_ms, last_error)


__all__ = ["select", "dispatch", "wait_results", "iter_results", "Dispatch", "DispatchError", "ResultsTimeout",
           "WAIT_MARGIN_S"]
