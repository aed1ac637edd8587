"""Prefect flows that run DetectK-C checks on the fleet (docs/prefect.md).

`check_tags` finds the configs of some tags (the engine's selection, as
`dtk run-tagged` and `dtk-dispatch` select), publishes their check requests
through detectk.fleet (libdtk-fleet: the messages `dtk-dispatch --brokers`
sends), waits for the workers' results, re-runs each failed check as a task
with retries, logs a summary and returns it. The flow run fails when a check
still fails after its retries, when a config is invalid, or (with
fail_on_anomaly) when a check finds an anomaly.

Needs: detectk importable (`pip install ./integrations/python`, libdtk
found as docs/python.md says), DTK_KAFKA_BROKERS or the brokers parameter,
and DTK_SIGNING_KEY in the environment of the process running the flow (it
is never a flow parameter, so it never reaches Prefect's database or logs).
"""

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from detectk import DetectKError
from detectk.fleet import dispatch, iter_results, select, wait_results

# results that mean the check did not run to its end (fleet.md)
FAILED = ("error", "expired", "rejected")


class ChecksFailed(DetectKError):
    """The flow's checks failed; .summary is what the flow would return."""

    def __init__(self, message, summary):
        super().__init__(message)
        self.summary = summary


class CheckStillFailing(DetectKError):
    """One check's result after a retry is still a failure (retried by Prefect)."""


def _brief(result):
    """What the summary keeps of a result: no config, no timings."""
    if result is None:
        return None
    return {k: result.get(k) for k in ("metric", "status", "request_id", "dispatch_id",
                                       "execution_time", "datapoint", "detections", "alert",
                                       "errors")}


@task(name="find-configs", cache_policy=NO_CACHE)
def find_configs(config_dir, tags, exclude_tags=None, match_all=False, due=False,
                 execution_time=None):
    """The selection (dtk-dispatch --dry-run); invalid configs are logged."""
    log = get_run_logger()
    sel = select(config_dir, tags, exclude_tags=exclude_tags, match_all=match_all, due=due,
                 execution_time=execution_time)
    for bad in sel["invalid"]:
        log.error("invalid config: %s", bad["error"])
    log.info("%d configs selected in %s by tags %s: %s", len(sel["selected"]), config_dir,
             tags, ", ".join(s["metric"] for s in sel["selected"]))
    return sel


@task(name="dispatch-and-wait", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def dispatch_and_wait(config_dir, tags=None, metric=None, exclude_tags=None, match_all=False,
                      due=False, execution_time=None, timeout=None, fleet=None):
    """Publishes the selection's requests and waits for their results,
    logging each as it arrives.
    Retried (the whole task) when nothing could be published or a request
    was not delivered; results still missing at the timeout are returned as
    None (the flow re-runs those checks one by one)."""
    log = get_run_logger()
    with dispatch(config_dir, tags, metric=metric, exclude_tags=exclude_tags,
                  match_all=match_all, due=due, execution_time=execution_time,
                  **(fleet or {})) as d:
        if d.undelivered:
            raise DetectKError("dispatch %s: %d requests not delivered: %s" % (
                d.dispatch_id, len(d.undelivered),
                "; ".join("%s: %s" % (r["metric"], r["error"]) for r in d.undelivered)))
        log.info("dispatch %s: %d requests published to %s", d.dispatch_id, d.published,
                 d.topic)
        by_id = {}
        for r in iter_results(d, timeout=timeout, raise_on_timeout=False):
            by_id[r["request_id"]] = r
            log.info("%s: %s (%d of %d)", r["metric"], r["status"], len(by_id),
                     len(d.delivered))
        return {"dispatch_id": d.dispatch_id, "invalid": d.invalid,
                "requests": [{"metric": r["metric"], "request_id": r["request_id"]}
                             for r in d.delivered],
                "results": [by_id.get(r["request_id"]) for r in d.delivered]}


@task(name="recheck", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def recheck(config_dir, metric, execution_time, timeout=None, fleet=None):
    """Re-runs one failed check (the same slot) on the fleet; raises, and so is
    retried, while its result is missing or still a failure."""
    log = get_run_logger()
    with dispatch(config_dir, metric=metric, execution_time=execution_time,
                  **(fleet or {})) as d:
        if d.published != 1:
            raise CheckStillFailing("%s: request not published (%s)" % (
                metric, "; ".join(r["error"] or "" for r in d.undelivered) or
                "; ".join(i["error"] for i in d.invalid) or "not selected"))
        result = wait_results(d, timeout=timeout)[0]
    if result["status"] in FAILED:
        raise CheckStillFailing("%s: %s: %s" % (metric, result["status"], "; ".join(
            "%s: %s" % (e.get("stage"), e.get("message")) for e in result.get("errors") or [])))
    log.info("%s: %s on retry", metric, result["status"])
    return result


def _summarize(selected, invalid, dispatch_id, final):
    counts = {"selected": selected, "results": 0, "ok": 0, "anomaly": 0, "failed": 0,
              "invalid": len(invalid)}
    for r in final.values():
        if r is None or r["status"] in FAILED:
            counts["failed"] += 1
        else:
            counts["results"] += 1
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"dispatch_id": dispatch_id, "summary": counts,
            "results": {m: _brief(r) for m, r in final.items()},
            "invalid": invalid}


@flow(name="detectk-check-tags")
def check_tags(config_dir: str, tags: list[str] | None = None,
               exclude_tags: list[str] | None = None, match_all: bool = False,
               due: bool = False, brokers: str | None = None, topic: str | None = None,
               results_topic: str | None = None, timeout: float | None = None,
               recheck_timeout: float | None = None, request_timeout: float | None = None,
               create_topics: bool = False, execution_time: int | None = None,
               fail_on_anomaly: bool = False, fail_on_invalid: bool = True) -> dict:
    """Runs the checks of the configs under config_dir selected by tags (or
    due: the configs with a slot starting this minute) on the fleet at
    execution_time (UTC epoch seconds; default the flow run's start, aligned
    per config). Returns {"dispatch_id", "summary": {"selected", "results",
    "ok", "anomaly", "failed", "invalid"}, "results": {metric: result},
    "invalid"}; raises ChecksFailed (the run is Failed) as the module says."""
    log = get_run_logger()
    t = int(time.time()) if execution_time is None else int(execution_time)
    fleet = {k: v for k, v in (("brokers", brokers), ("topic", topic),
                                ("results_topic", results_topic),
                                ("request_timeout", request_timeout),
                                ("create_topics", create_topics)) if v}
    sel = find_configs(config_dir, tags, exclude_tags, match_all, due, t)
    invalid = sel["invalid"]
    final, dispatch_id = {}, None
    if sel["selected"]:
        batch = dispatch_and_wait(config_dir, tags, None, exclude_tags, match_all, due, t,
                                  timeout, fleet)
        dispatch_id = batch["dispatch_id"]
        for req, res in zip(batch["requests"], batch["results"]):
            final[req["metric"]] = res
    again = [m for m, r in final.items() if r is None or r["status"] in FAILED]
    for m in again:
        r = final[m]
        log.warning("%s: %s; retrying", m, "no result" if r is None else "%s: %s" % (
            r["status"], "; ".join(e.get("message", "") for e in r.get("errors") or [])))
        state = recheck(config_dir, m, t, recheck_timeout or timeout, fleet,
                        return_state=True)
        if state.is_completed():
            final[m] = state.result()
        else:
            log.error("%s: still failing after retries: %s", m, state.message)
    out = _summarize(len(sel["selected"]), invalid, dispatch_id, final)
    c = out["summary"]
    log.info("summary: %d selected, %d ok, %d anomaly, %d failed, %d invalid configs",
             c["selected"], c["ok"], c["anomaly"], c["failed"], c["invalid"])
    for m, r in sorted(out["results"].items()):
        log.info("  %-30s %s", m, "failed (no result)" if r is None else r["status"])
    why = []
    if c["failed"]:
        why.append("%d checks failed: %s" % (c["failed"], ", ".join(
            sorted(m for m, r in final.items() if r is None or r["status"] in FAILED))))
    if fail_on_invalid and invalid:
        why.append("%d invalid configs: %s" % (len(invalid), ", ".join(
            i["path"] for i in invalid)))
    if fail_on_anomaly and c["anomaly"]:
        why.append("%d anomalies: %s" % (c["anomaly"], ", ".join(
            sorted(m for m, r in final.items() if r and r["status"] == "anomaly"))))
    if why:
        raise ChecksFailed("; ".join(why), out)
    return out


__all__ = ["check_tags", "find_configs", "dispatch_and_wait", "recheck", "ChecksFailed",
           "CheckStillFailing", "FAILED"]
