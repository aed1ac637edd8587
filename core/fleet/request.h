/* Building the check request of one selected config (fleet.md "Check
 * request v1"): the file's original text, the profiles it names as
 * written, the aligned execution time and the deadline. No Kafka here;
 * the only I/O is reading the config and profiles files.
 *
 * Thread safety: every function is reentrant. */
#ifndef DTK_FLEET_REQUEST_H
#define DTK_FLEET_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "message.h"

typedef struct dtk_fleet_request_opts {
	const char *dispatch_id;   /* one per dtk-dispatch run */
	const char *profiles_path; /* --profiles; NULL = the lookup order */
	int64_t requested_time;	   /* seconds; aligned per config unless no_align */
	int no_align;
	int64_t dispatched_at_ms;
	int store, alerts;    /* options.store, options.alerts */
	const char *reply_to; /* options.reply_to, or NULL */
} dtk_fleet_request_opts;

/* Fills req (caller storage, zeroed first) for the config at path whose
 * deferred-mode load is cfg: a fresh request id, config_yaml = the bytes
 * of the file, profiles = the entries named by collector.profile,
 * storage.profile and every alerter's profile, as written, execution_time
 * = the requested time aligned to the config's grid, deadline =
 * dispatched_at + schedule.timeout, the config's tags, attempt 0.
 *
 * Returns 0, or -1 with errstr saying what to fix: the file cannot be read,
 * a named profile is not found, or a profile holds a literal secret
 * (dtk_fleet_profile_check). Either way the caller calls
 * dtk_request_clear(req). path and cfg are borrowed. */
int dtk_fleet_request_build(const char *path, const dtk_config *cfg,
			    const dtk_fleet_request_opts *o, dtk_request *req, char *errstr,
			    size_t errstr_size);

/* Refuses a profile entry (as written) that carries a secret in clear: a
 * string, number or boolean under a key naming a password, secret, token
 * or key (any case, at any depth; `limit_key` is not a secret) that holds
 * no ${VAR} placeholder. Empty values and null pass. Returns 0, or -1 with
 * errstr naming the profile and key (never the value). entry is borrowed. */
int dtk_fleet_profile_check(const char *name, const dtk_value *entry, char *errstr,
			    size_t errstr_size);

#endif
