/* Alert state: a small key/value store with expiry (cooldowns,
 * consecutive counts, missing counters, alert claims). Keys follow
 * fleet.md (`dtk:state:...`). The local backend is the table
 * dtk_alert_state of $DTK_STATE_DIR/dtk.db; Redis (issue 4) implements the
 * same functions.
 *
 * A dtk_state is one connection: use it from one thread at a time. */
#ifndef DTK_STORE_STATE_H
#define DTK_STORE_STATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct dtk_state dtk_state;

/* Opens the local state database at path (NULL = $DTK_STATE_DIR/dtk.db),
 * creating it. Returns a handle owned by the caller, or NULL with errstr. */
dtk_state *dtk_state_open(const char *path, char *errstr, size_t errstr_size);
void dtk_state_close(dtk_state **st);

/* Reads key at time now (seconds). Returns 1 and a malloc'd value in *out
 * when present and unexpired, 0 when absent, -1 on error. */
int dtk_state_get(dtk_state *st, const char *key, int64_t now, char **out, char *errstr,
		  size_t errstr_size);
/* Sets key; ttl_seconds <= 0 means no expiry. */
int dtk_state_set(dtk_state *st, const char *key, const char *value, int64_t now,
		  int64_t ttl_seconds, char *errstr, size_t errstr_size);
/* Sets key only when absent or expired: 1 when set, 0 when held, -1 on error. */
int dtk_state_set_nx(dtk_state *st, const char *key, const char *value, int64_t now,
		     int64_t ttl_seconds, char *errstr, size_t errstr_size);
int dtk_state_del(dtk_state *st, const char *key, char *errstr, size_t errstr_size);

#endif
