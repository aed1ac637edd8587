/* state.h in Redis: plain string keys (fleet.md's dtk:state:...), expiry
 * by SET ... PX so every worker sees the same clock, claims by SET NX PX,
 * and compare-and-delete by one Lua script. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/state_redis.h"

static int unexpected(dtk_redis *r, const dtk_redis_reply *rep, const char *what, char *errstr,
		      size_t errstr_size)
{
	if (rep->type == DTK_REDIS_ERROR)
		snprintf(errstr, errstr_size, "alert state: Redis %s: %s: %s", dtk_redis_shown(r),
			 what, rep->str);
	else
		snprintf(errstr, errstr_size, "alert state: Redis %s: %s: unexpected reply",
			 dtk_redis_shown(r), what);
	return -1;
}

static int command(dtk_redis *r, int argc, const char **argv, dtk_redis_reply *rep, char *errstr,
		   size_t errstr_size)
{
	char err[512];
	if (dtk_redis_command(r, argc, argv, NULL, rep, err, sizeof(err)) == 0)
		return 0;
	snprintf(errstr, errstr_size, "alert state: %s", err);
	return -1;
}

int dtk_state_redis_get(dtk_redis *r, const char *key, char **out, char *errstr, size_t errstr_size)
{
	dtk_redis_reply rep;
	const char *argv[] = {"GET", key};
	int rc = -1;
	*out = NULL;
	if (command(r, 2, argv, &rep, errstr, errstr_size) != 0)
		return -1;
	if (rep.type == DTK_REDIS_NIL) {
		rc = 0;
	} else if (rep.type == DTK_REDIS_STRING) {
		*out = rep.str; /* the reply's copy becomes the caller's */
		rep.str = NULL;
		rc = 1;
	} else {
		unexpected(r, &rep, "GET", errstr, errstr_size);
	}
	dtk_redis_reply_free(&rep);
	return rc;
}

int dtk_state_redis_set(dtk_redis *r, const char *key, const char *value, int64_t ttl_ms, int nx,
			char *errstr, size_t errstr_size)
{
	dtk_redis_reply rep;
	const char *argv[6] = {"SET", key, value ? value : ""};
	char px[24];
	int argc = 3, rc = -1;
	if (nx)
		argv[argc++] = "NX";
	if (ttl_ms > 0) {
		snprintf(px, sizeof(px), "%" PRId64, ttl_ms);
		argv[argc++] = "PX";
		argv[argc++] = px;
	}
	if (command(r, argc, argv, &rep, errstr, errstr_size) != 0)
		return -1;
	if (rep.type == DTK_REDIS_STRING)
		rc = nx ? 1 : 0;
	else if (nx && rep.type == DTK_REDIS_NIL)
		rc = 0;
	else
		unexpected(r, &rep, "SET", errstr, errstr_size);
	dtk_redis_reply_free(&rep);
	return rc;
}

int dtk_state_redis_del(dtk_redis *r, const char *key, char *errstr, size_t errstr_size)
{
	dtk_redis_reply rep;
	const char *argv[] = {"DEL", key};
	int rc = -1;
	if (command(r, 2, argv, &rep, errstr, errstr_size) != 0)
		return -1;
	if (rep.type == DTK_REDIS_INTEGER)
		rc = 0;
	else
		unexpected(r, &rep, "DEL", errstr, errstr_size);
	dtk_redis_reply_free(&rep);
	return rc;
}

static const char del_if_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
				    "  return redis.call('DEL', KEYS[1])\n"
				    "end\n"
				    "return 0\n";

int dtk_state_redis_del_if(dtk_redis *r, const char *key, const char *value, char *errstr,
			   size_t errstr_size)
{
	dtk_redis_reply rep;
	char sha[41], err[512];
	int rc = -1;
	if (dtk_redis_script_sha1(del_if_script, sha) != 0) {
		snprintf(errstr, errstr_size, "alert state: SHA-1 failed");
		return -1;
	}
	if (dtk_redis_eval(r, del_if_script, sha, 1, &key, 1, &value, &rep, err, sizeof(err)) !=
	    0) {
		snprintf(errstr, errstr_size, "alert state: %s", err);
		return -1;
	}
	if (rep.type == DTK_REDIS_INTEGER)
		rc = rep.integer > 0 ? 1 : 0;
	else
		unexpected(r, &rep, "compare-and-delete", errstr, errstr_size);
	dtk_redis_reply_free(&rep);
	return rc;
}
