/* The fleet's C API for foreign-function callers (detectk.fleet in
 * integrations/python, over ctypes): publish the check requests of a tag
 * selection exactly as `dtk-dispatch --brokers` does (the same selection,
 * request building, signing and idempotent producer, every delivery
 * confirmed), then wait for their results. Options go in and reports come
 * out as JSON text, so callers never mirror DetectK's C structs.
 *
 * Every returned string is allocated with malloc; release it with dtk_free
 * (libdtk, core/capi.h). Thread safety: a dtk_fleet_handle is used by one
 * thread at a time; different handles are independent. */
#ifndef DTK_FLEET_CAPI_H
#define DTK_FLEET_CAPI_H

#include <stddef.h>
#include <stdint.h>

typedef struct dtk_fleet_handle dtk_fleet_handle;

/* Selects the configs under opts.config_dir and publishes one request per
 * valid config. opts_json is an object (absent keys take the default):
 *   config_dir (string, required), tags, exclude_tags (lists of strings),
 *   match_all, due (bools), metric (string): the selection, of which one
 *   is needed, as dtk-dispatch's flags;
 *   brokers (string, required), topic, results_topic, dlq_topic (strings),
 *   kafka_props (list of "name=value"), request_timeout_ms (int, 0 = 10 s);
 *   execution_time (int UTC seconds; absent or null = now), no_align,
 *   store, alerts (bools, default false, false, true, true), profiles
 *   (string, the profiles file; absent = the usual lookup);
 *   signing_key (string; absent = $DTK_SIGNING_KEY, "" = unsigned),
 *   source (ce_source; absent = "/dtk-dispatch/HOST", as dtk-dispatch);
 *   create_topics (bool), partitions (int, 24), replication_factor (int, 1);
 *   track_results (bool, default true): record the result topic's end
 *   offsets before publishing, so that dtk_fleet_await_json can read the
 *   results (fails early when the result topic does not exist).
 *
 * *report_json (may be NULL) receives, owned by the caller:
 *   {"dispatch_id", "topic", "results_topic", "signed", "published",
 *    "requests": [{"path", "metric", "request_id", "execution_time" (UTC
 *    seconds), "timeout" (schedule.timeout, s), "partition", "offset",
 *    "error" (null when delivered)}],
 *   "invalid": [{"path", "error"}]}
 * Configs that do not load, or whose request cannot be built (a profile with
 * a secret in clear), are listed in "invalid" and the others are still
 * published. Returns a handle owned by the caller (dtk_fleet_handle_free),
 * or NULL with errstr when nothing was published: bad options, a config
 * directory that cannot be read, the brokers unreachable or the topic
 * missing (bounded by request_timeout_ms per round trip); then
 * *report_json, when not NULL, still lists the invalid configs. */
dtk_fleet_handle *dtk_fleet_dispatch_json(const char *opts_json, char **report_json, char *errstr,
					  size_t errstr_size);

/* The selection dtk_fleet_dispatch_json would publish, without Kafka
 * (dtk-dispatch --dry-run): opts_json as there, of which only config_dir,
 * tags, exclude_tags, match_all, metric, due, execution_time (for due) and
 * profiles are read, and no selection selects every config. Returns, as JSON text owned by the
 * caller,
 * {"selected": [{"path", "metric", "tags", "interval" (as written),
 * "interval_seconds", "timeout", "timezone"}], "invalid": [{"path",
 * "error"}]}, or NULL with errstr (bad options, an unreadable directory). */
char *dtk_fleet_select_json(const char *opts_json, char *errstr, size_t errstr_size);

/* Reads the result topic from the offsets recorded before publishing and
 * returns, as JSON text owned by the caller, {"results": [...], "error"}:
 * one slot per delivered request of the report, in its order, holding the
 * first result of that request (a check result v1 object) or null when
 * none came within timeout_ms; "error" is the last consumer error when some
 * are missing, else null. Results of other dispatches and duplicates are
 * skipped. Can be called again (it reads from the recorded offsets each
 * time). Returns NULL with errstr when the handle was made without
 * track_results or the consumer cannot be set up. */
char *dtk_fleet_await_json(dtk_fleet_handle *h, int64_t timeout_ms, char *errstr,
			   size_t errstr_size);

/* Results one at a time, as they arrive. dtk_fleet_results_start opens
 * (again) a reader of the result topic from the offsets recorded before
 * publishing. Returns 0, or -1 with errstr (the handle was made without
 * track_results, the consumer cannot be set up). */
int dtk_fleet_results_start(dtk_fleet_handle *h, char *errstr, size_t errstr_size);

/* The next result of this dispatch from the reader of
 * dtk_fleet_results_start (a check result v1 object, as JSON text owned by
 * the caller). Not filtered here: duplicates, and results of request ids
 * the caller did not publish. Returns NULL with errstr "" when none came
 * within timeout_ms, NULL with errstr on a consumer error (the reader stays
 * usable) or when the reader was not started. */
char *dtk_fleet_results_next_json(dtk_fleet_handle *h, int64_t timeout_ms, char *errstr,
				  size_t errstr_size);

/* Closes the producer, frees the handle and NULLs *h. NULL is a no-op. */
void dtk_fleet_handle_free(dtk_fleet_handle **h);

#endif
