/* Parsed metric configs by key (config_sha256 plus a hash of the request's
 * profiles): a bounded LRU, so a worker parses each config text once.
 *
 * Thread safety: every function may be called from any thread. A config
 * handed out stays valid until released, even when evicted meanwhile. */
#ifndef DTK_WORKER_CFGCACHE_H
#define DTK_WORKER_CFGCACHE_H

#include <stddef.h>

#include "config/config.h"

typedef struct dtk_cfgcache dtk_cfgcache;

/* A cache of at most cap configs, owned by the caller; NULL when out of
 * memory. */
dtk_cfgcache *dtk_cfgcache_new(size_t cap);

/* The config cached under key, with a reference the caller releases, or
 * NULL. */
const dtk_config *dtk_cfgcache_get(dtk_cfgcache *c, const char *key);

/* Caches *cfg under key (taking it and NULLing *cfg) unless another thread
 * cached that key first (then *cfg is freed). Returns the cached config
 * with a reference, or NULL when out of memory (*cfg freed). */
const dtk_config *dtk_cfgcache_put(dtk_cfgcache *c, const char *key, dtk_config **cfg);

/* Drops the caller's reference to cfg (from get or put). */
void dtk_cfgcache_release(dtk_cfgcache *c, const dtk_config *cfg);

/* Frees every config (none may still be referenced); NULLs *c. */
void dtk_cfgcache_free(dtk_cfgcache **c);

#endif
