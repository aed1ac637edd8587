"""Loading metric configs through libdtk (the engine's own loader and
validator), exposing what orchestrators schedule by."""

import json

from . import _lib


class Schedule:
    __slots__ = ("interval", "interval_seconds", "timeout", "delay")

    def __init__(self, d):
        self.interval = d.get("interval")  # the text as written ("10 minutes")
        self.interval_seconds = d.get("interval_seconds")
        self.timeout = d.get("timeout")
        self.delay = d.get("delay")

    def __repr__(self):
        return "Schedule(interval=%r, interval_seconds=%r)" % (self.interval, self.interval_seconds)


class Collector:
    __slots__ = ("type",)

    def __init__(self, d):
        self.type = d.get("type")

    def __repr__(self):
        return "Collector(type=%r)" % (self.type,)


class MetricConfig:
    """A loaded, validated metric config (a summary; the engine keeps the rest)."""

    def __init__(self, d):
        self._doc = d
        self.path = d.get("path")
        self.name = d.get("name")
        self.description = d.get("description")
        self.tags = list(d.get("tags") or [])
        self.timezone = d.get("timezone")
        self.collector = Collector(d.get("collector") or {})
        self.detectors = list(d.get("detectors") or [])
        self.schedule = Schedule(d.get("schedule") or {})
        self.warnings = list(d.get("warnings") or [])

    def to_dict(self):
        return json.loads(json.dumps(self._doc))

    def __repr__(self):
        return "MetricConfig(name=%r, tags=%r, schedule=%r, collector=%r)" % (
            self.name, self.tags, self.schedule, self.collector)


class ConfigLoader:
    """Loads metric configs with libdtk's loader.

    strict=True (the default) validates everything `dtk run` needs, and an
    unset ${VAR} without default is an error; strict=False leaves unset
    variables as placeholders and checks only name, tags and schedule (as
    the dispatcher does when publishing)."""

    def __init__(self, strict=True):
        self.strict = strict
        _lib.load()

    def load(self, path):
        """A MetricConfig; raises detectk.ConfigError with the engine's
        "PATH:LINE:COL: key: message" (ConfigFileNotFoundError, also a
        FileNotFoundError, when the file is missing)."""
        return MetricConfig(json.loads(_lib.config_info_json(path, self.strict)))

    load_file = load


__all__ = ["ConfigLoader", "MetricConfig", "Schedule", "Collector"]
