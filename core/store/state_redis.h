/* Internal to core/store: the Redis side of state.h, used by state.c when
 * a dtk_state was opened with dtk_state_open_redis. Each takes the
 * state's own connection (one thread at a time) and returns -1 with
 * errstr naming Redis when it cannot be reached. */
#ifndef DTK_STORE_STATE_REDIS_H
#define DTK_STORE_STATE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "util/redis.h"

/* GET: 1 and a malloc'd *out when present, 0 when absent. */
int dtk_state_redis_get(dtk_redis *r, const char *key, char **out, char *errstr,
			size_t errstr_size);
/* SET key value [NX] [PX ttl_ms] (ttl_ms <= 0: no expiry). With nx,
 * 1 when set and 0 when held; without, 0. */
int dtk_state_redis_set(dtk_redis *r, const char *key, const char *value, int64_t ttl_ms, int nx,
			char *errstr, size_t errstr_size);
int dtk_state_redis_del(dtk_redis *r, const char *key, char *errstr, size_t errstr_size);
/* Deletes key only while it holds value (one Lua script): 1 deleted, 0
 * not. */
int dtk_state_redis_del_if(dtk_redis *r, const char *key, const char *value, char *errstr,
			   size_t errstr_size);

#endif
