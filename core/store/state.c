/* state.h over the table dtk_alert_state of the local state database.
 * Expiry is checked on read (an expired key reads as absent) and by
 * set_nx; expired rows are overwritten, never swept.
 *
 * A dtk_state is one connection for one thread at a time; every process
 * and thread opens its own, and set_nx is one statement, so claims are
 * atomic across them.
 *
 * A handle from dtk_state_open_redis carries a Redis connection instead,
 * and every function hands over to state_redis.c. The claim protocol is
 * written once, over both. */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/state.h"
#include "store/state_redis.h"
#include "store/store.h"
#include "util/clock.h"

/* Internal to core/store (sqlite_store.c): opens with WAL, synchronous=NORMAL,
 * busy_timeout 5 s, creating parent directories (0700) and running schema. */
int dtk_store_sqlite_open(const char *path, const char *schema, sqlite3 **out, char *errstr,
			  size_t errstr_size);

enum { SS_GET, SS_SET, SS_SET_NX, SS_DEL, SS_DEL_IF, SS_COUNT };

static const char *const state_sql[SS_COUNT] = {
	[SS_GET] = "SELECT value FROM dtk_alert_state WHERE key = ?1 AND "
		   "(expires_at IS NULL OR expires_at > ?2)",
	[SS_SET] = "INSERT INTO dtk_alert_state (key, value, expires_at) VALUES (?1, ?2, ?3) "
		   "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
		   "expires_at = excluded.expires_at",
	[SS_SET_NX] = "INSERT INTO dtk_alert_state (key, value, expires_at) VALUES (?1, ?2, ?3) "
		      "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
		      "expires_at = excluded.expires_at WHERE dtk_alert_state.expires_at IS NOT NULL "
		      "AND dtk_alert_state.expires_at <= ?4",
	[SS_DEL] = "DELETE FROM dtk_alert_state WHERE key = ?1",
	[SS_DEL_IF] = "DELETE FROM dtk_alert_state WHERE key = ?1 AND value = ?2",
};

static const char state_schema[] = "CREATE TABLE IF NOT EXISTS dtk_alert_state ("
				   " key TEXT PRIMARY KEY,"
				   " value TEXT,"
				   " expires_at INTEGER);";

struct dtk_state {
	dtk_redis *redis; /* non-NULL: the Redis backend, and nothing below is used */
	sqlite3 *db;
	sqlite3_stmt *st[SS_COUNT];
	char path[PATH_MAX];
};

dtk_state *dtk_state_open(const char *path, char *errstr, size_t errstr_size)
{
	char dir[PATH_MAX];
	dtk_state *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(errstr, errstr_size, "alert state: out of memory");
		return NULL;
	}
	if (path && *path) {
		if ((size_t)snprintf(st->path, sizeof(st->path), "%s", path) >= sizeof(st->path)) {
			snprintf(errstr, errstr_size, "alert state: path too long");
			goto fail;
		}
	} else if (dtk_store_state_dir(dir, sizeof(dir)) != 0 ||
		   (size_t)snprintf(st->path, sizeof(st->path), "%s/dtk.db", dir) >=
			   sizeof(st->path)) {
		snprintf(errstr, errstr_size,
			 "alert state: no state directory (set DTK_STATE_DIR or HOME)");
		goto fail;
	}
	if (dtk_store_sqlite_open(st->path, state_schema, &st->db, errstr, errstr_size) != 0)
		goto fail;
	for (int i = 0; i < SS_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, state_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->st[i], NULL) != SQLITE_OK) {
			snprintf(errstr, errstr_size, "alert state %s: %s", st->path,
				 sqlite3_errmsg(st->db));
			goto fail;
		}
	return st;
fail:
	dtk_state_close(&st);
	return NULL;
}

dtk_state *dtk_state_open_redis(const char *url, char *errstr, size_t errstr_size)
{
	char err[512];
	dtk_state *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(errstr, errstr_size, "alert state: out of memory");
		return NULL;
	}
	st->redis = dtk_redis_connect(url, 0, err, sizeof(err));
	if (!st->redis) {
		snprintf(errstr, errstr_size, "alert state: %s", err);
		free(st);
		return NULL;
	}
	return st;
}

void dtk_state_close(dtk_state **stp)
{
	if (!stp || !*stp)
		return;
	dtk_state *st = *stp;
	dtk_redis_free(&st->redis);
	for (int i = 0; i < SS_COUNT; i++)
		sqlite3_finalize(st->st[i]);
	sqlite3_close(st->db);
	free(st);
	*stp = NULL;
}

static int state_error(dtk_state *st, const char *what, char *errstr, size_t errstr_size)
{
	snprintf(errstr, errstr_size, "alert state %s: %s: %s", st->path, what,
		 sqlite3_errmsg(st->db));
	return -1;
}

static sqlite3_stmt *prepared(dtk_state *st, int which)
{
	sqlite3_stmt *s = st->st[which];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int dtk_state_get(dtk_state *st, const char *key, int64_t now, char **out, char *errstr,
		  size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_get(st->redis, key, out, errstr, errstr_size);
	int rc = -1;
	sqlite3_stmt *s = prepared(st, SS_GET);
	*out = NULL;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		*out = strdup(v ? v : "");
		if (!*out)
			snprintf(errstr, errstr_size, "alert state: out of memory");
		else
			rc = 1;
	} else {
		state_error(st, "reading", errstr, errstr_size);
	}
	sqlite3_reset(s);
	return rc;
}

static int state_write(dtk_state *st, int which, const char *key, const char *value,
		       int64_t now, int64_t ttl_seconds, char *errstr, size_t errstr_size)
{
	sqlite3_stmt *s = prepared(st, which);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value ? value : "", -1, SQLITE_STATIC);
	if (ttl_seconds > 0)
		sqlite3_bind_int64(s, 3, now + ttl_seconds);
	else
		sqlite3_bind_null(s, 3);
	if (which == SS_SET_NX)
		sqlite3_bind_int64(s, 4, now);
	int step = sqlite3_step(s);
	int changed = sqlite3_changes(st->db);
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		return state_error(st, "writing", errstr, errstr_size);
	return changed > 0 ? 1 : 0;
}

int dtk_state_set(dtk_state *st, const char *key, const char *value, int64_t now,
		  int64_t ttl_seconds, char *errstr, size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_set(st->redis, key, value, ttl_seconds * 1000, 0, errstr,
					   errstr_size);
	return state_write(st, SS_SET, key, value, now, ttl_seconds, errstr, errstr_size) < 0 ? -1
												: 0;
}

int dtk_state_set_nx(dtk_state *st, const char *key, const char *value, int64_t now,
		     int64_t ttl_seconds, char *errstr, size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_set(st->redis, key, value, ttl_seconds * 1000, 1, errstr,
					   errstr_size);
	return state_write(st, SS_SET_NX, key, value, now, ttl_seconds, errstr, errstr_size);
}

int dtk_state_del(dtk_state *st, const char *key, char *errstr, size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_del(st->redis, key, errstr, errstr_size);
	sqlite3_stmt *s = prepared(st, SS_DEL);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int step = sqlite3_step(s);
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		return state_error(st, "deleting", errstr, errstr_size);
	return 0;
}

/* ---- the claim protocol (fleet.md), over either backend ---- */

#define CLAIM_SENT "sent"

/* SET NX with a millisecond lease: exact in Redis, whole seconds
 * (rounded up) in SQLite, whose expiry column counts seconds. */
static int claim_set_nx(dtk_state *st, const char *key, const char *owner, int64_t lease_ms,
			char *errstr, size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_set(st->redis, key, owner, lease_ms, 1, errstr, errstr_size);
	return state_write(st, SS_SET_NX, key, owner, dtk_now_ms() / 1000, (lease_ms + 999) / 1000,
			   errstr, errstr_size);
}

dtk_claim dtk_state_claim(dtk_state *st, const char *key, const char *owner, int64_t lease_ms,
			  int64_t wait_ms, char *errstr, size_t errstr_size)
{
	if (!owner || !*owner || strcmp(owner, CLAIM_SENT) == 0 || lease_ms <= 0) {
		snprintf(errstr, errstr_size,
			 "alert claim: the owner must be a non-empty name "
			 "other than \"sent\" and the lease positive");
		return DTK_CLAIM_ERROR;
	}
	double start = dtk_mono_ms();
	int64_t delay = 25;
	int saw_other = 0;
	for (;;) {
		int got = claim_set_nx(st, key, owner, lease_ms, errstr, errstr_size);
		if (got < 0)
			return DTK_CLAIM_ERROR;
		if (got == 1)
			return saw_other ? DTK_CLAIM_RECLAIMED : DTK_CLAIM_CLAIMED;
		char *v = NULL;
		int found = dtk_state_get(st, key, dtk_now_ms() / 1000, &v, errstr, errstr_size);
		if (found < 0)
			return DTK_CLAIM_ERROR;
		if (found == 1) {
			int sent = strcmp(v, CLAIM_SENT) == 0, mine = strcmp(v, owner) == 0;
			free(v);
			if (sent)
				return DTK_CLAIM_SENT;
			if (mine)
				return saw_other ? DTK_CLAIM_RECLAIMED : DTK_CLAIM_CLAIMED;
			saw_other = 1;
			int64_t left = wait_ms - (int64_t)(dtk_mono_ms() - start);
			if (left <= 0)
				return DTK_CLAIM_HELD;
			dtk_sleep_ms(delay < left ? delay : left);
			delay = delay * 2 > 1000 ? 1000 : delay * 2;
		}
		/* found == 0: it lapsed between the two calls; try again at once */
	}
}

int dtk_state_mark_sent(dtk_state *st, const char *key, char *errstr, size_t errstr_size)
{
	return dtk_state_set(st, key, CLAIM_SENT, dtk_now_ms() / 1000, DTK_CLAIM_SENT_TTL_S, errstr,
			     errstr_size);
}

int dtk_state_unclaim(dtk_state *st, const char *key, const char *owner, char *errstr,
		      size_t errstr_size)
{
	if (st->redis)
		return dtk_state_redis_del_if(st->redis, key, owner, errstr, errstr_size);
	sqlite3_stmt *s = prepared(st, SS_DEL_IF);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	int step = sqlite3_step(s);
	int changed = sqlite3_changes(st->db);
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		return state_error(st, "deleting", errstr, errstr_size);
	return changed > 0 ? 1 : 0;
}
