"""Prefect deployments of detectk_flows.check_tags, one per tag group, on the
schedule of the group's configs (docs/prefect.md).

    from deployments import deployments_by_tag, due_deployment
    deps = deployments_by_tag("configs", ["critical", "hourly"]) + [due_deployment("configs")]
    # prefect.serve(*deps)   or   prefect.deploy(*deps, work_pool_name=...)

Each tag's configs must share one schedule.interval (and, for a day or
more, one timezone): the schedule is the interval's cron expression when
one fires exactly on DetectK's grid (config.md: origin Monday
1970-01-05T00:00, in the metric's timezone for a day or more), else an
interval schedule anchored at that origin. A tag whose configs have mixed
intervals is an error naming them (split the tag, or use due_deployment:
every minute, the configs with a slot starting then)."""

import datetime as dt
import os
import sys
from zoneinfo import ZoneInfo

from prefect.schedules import Cron, Interval

from detectk.fleet import select

from detectk_flows import check_tags

ORIGIN = dt.datetime(1970, 1, 5)  # a Monday: DetectK's grid origin (config.md)
DAY = 86400


def cron_for_interval(seconds):
    """The cron expression firing exactly at DetectK's aligned times for an
    interval of `seconds`, or None when cron cannot (7 minutes, 90 minutes,
    5 hours, 2 days...)."""
    if seconds <= 0 or seconds % 60:
        return None
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else "*/%d * * * *" % minutes
    if seconds % 3600 == 0 and seconds < DAY and DAY % seconds == 0:
        hours = seconds // 3600
        return "0 * * * *" if hours == 1 else "0 */%d * * *" % hours
    if seconds == DAY:
        return "0 0 * * *"
    if seconds == 7 * DAY:
        return "0 0 * * 1"  # the grid's origin is a Monday
    return None


def schedule_for(seconds, timezone="UTC"):
    """A Prefect schedule firing at DetectK's aligned times (cron when it
    can, else an interval anchored at the grid's origin)."""
    tz = timezone if seconds >= DAY else "UTC"
    cron = cron_for_interval(seconds)
    if cron:
        return Cron(cron, timezone=tz)
    return Interval(dt.timedelta(seconds=seconds), anchor_date=ORIGIN.replace(tzinfo=ZoneInfo(tz)),
                    timezone=tz)


def deployments_by_tag(config_dir, tags=None, *, name_prefix="detectk-", parameters=None,
                       paused=None):
    """One deployment of check_tags per tag (default: every tag of the
    valid configs under config_dir), scheduled by its configs' interval.
    parameters are added to each deployment's (brokers, timeout, ...).
    Raises ValueError for a tag without configs or with mixed intervals."""
    sel = select(config_dir)  # every config
    by_tag = {}
    for s in sel["selected"]:
        for t in s["tags"]:
            by_tag.setdefault(t, []).append(s)
    out = []
    for tag in (tags if tags is not None else sorted(by_tag)):
        configs = by_tag.get(tag)
        if not configs:
            raise ValueError("tag %r: no valid config under %s has it" % (tag, config_dir))
        grids = {(c["interval_seconds"], c["timezone"] if c["interval_seconds"] >= DAY
                  else "UTC") for c in configs}
        if len(grids) != 1:
            raise ValueError("tag %r: its configs run on different schedules (%s); split the "
                             "tag or use due_deployment()" % (tag, ", ".join(
                                 "%s: %s" % (c["metric"], c["interval"]) for c in configs)))
        seconds, tz = grids.pop()
        params = {"config_dir": os.path.abspath(config_dir), "tags": [tag]}
        params.update(parameters or {})
        out.append(check_tags.to_deployment(
            name=name_prefix + tag, schedule=schedule_for(seconds, tz), parameters=params,
            paused=paused, tags=["detectk", tag],
            description="DetectK-C checks tagged %r (%d configs, every %s)" % (
                tag, len(configs), configs[0]["interval"])))
    return out


def due_deployment(config_dir, *, name="detectk-due", parameters=None, paused=None):
    """Every minute, the configs with a slot starting that minute
    (dtk-dispatch --due): one deployment for configs of any interval."""
    params = {"config_dir": os.path.abspath(config_dir), "due": True}
    params.update(parameters or {})
    return check_tags.to_deployment(name=name, schedule=Cron("* * * * *", timezone="UTC"),
                                    parameters=params, paused=paused, tags=["detectk", "due"],
                                    description="DetectK-C checks due each minute")


if __name__ == "__main__":
    # python deployments.py CONFIG_DIR [TAG...]: prints what would be deployed
    deps = deployments_by_tag(sys.argv[1], sys.argv[2:] or None) + [due_deployment(sys.argv[1])]
    for d in deps:
        s = d.schedules[0].schedule
        print("%-30s %-22s %s" % (d.name, getattr(s, "cron", None) or s.interval,
                                  d.parameters))
