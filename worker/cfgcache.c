/* The worker's config cache: see cfgcache.h. A small array scanned under
 * one mutex: lookups are rare next to a check's I/O. */
#include "cfgcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	char *key; /* NULL = detached: evicted while referenced */
	dtk_config *cfg;
	size_t refs;
	uint64_t used;
} entry;

struct dtk_cfgcache {
	pthread_mutex_t mu;
	entry *e;    /* cached entries, then detached ones */
	size_t n;    /* entries in use (cached or detached) */
	size_t size; /* allocated */
	size_t cap;  /* most cached entries */
	uint64_t clock;
};

dtk_cfgcache *dtk_cfgcache_new(size_t cap)
{
	dtk_cfgcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	c->cap = cap ? cap : 1;
	return c;
}

const dtk_config *dtk_cfgcache_get(dtk_cfgcache *c, const char *key)
{
	const dtk_config *cfg = NULL;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].key && strcmp(c->e[i].key, key) == 0) {
			c->e[i].refs++;
			c->e[i].used = ++c->clock;
			cfg = c->e[i].cfg;
			break;
		}
	pthread_mutex_unlock(&c->mu);
	return cfg;
}

static void remove_at(dtk_cfgcache *c, size_t i)
{
	free(c->e[i].key);
	dtk_config_free(&c->e[i].cfg);
	c->e[i] = c->e[--c->n];
}

const dtk_config *dtk_cfgcache_put(dtk_cfgcache *c, const char *key, dtk_config **cfg)
{
	const dtk_config *out = NULL;
	pthread_mutex_lock(&c->mu);
	size_t cached = 0, oldest = SIZE_MAX;
	for (size_t i = 0; i < c->n; i++) {
		if (!c->e[i].key)
			continue;
		if (strcmp(c->e[i].key, key) == 0) {
			c->e[i].refs++;
			c->e[i].used = ++c->clock;
			out = c->e[i].cfg;
			dtk_config_free(cfg);
			goto out;
		}
		cached++;
		if (oldest == SIZE_MAX || c->e[i].used < c->e[oldest].used)
			oldest = i;
	}
	if (cached >= c->cap && oldest != SIZE_MAX) {
		/* evict the least recently used: free it now, or when its last
		 * user releases it */
		free(c->e[oldest].key);
		c->e[oldest].key = NULL;
		if (c->e[oldest].refs == 0)
			remove_at(c, oldest);
	}
	if (c->n == c->size) {
		size_t size = c->size ? c->size * 2 : 16;
		entry *e = realloc(c->e, size * sizeof(*e));
		if (!e) {
			dtk_config_free(cfg);
			goto out;
		}
		c->e = e;
		c->size = size;
	}
	char *k = strdup(key);
	if (!k) {
		dtk_config_free(cfg);
		goto out;
	}
	c->e[c->n] = (entry){.key = k, .cfg = *cfg, .refs = 1, .used = ++c->clock};
	c->n++;
	out = *cfg;
	*cfg = NULL;
out:
	pthread_mutex_unlock(&c->mu);
	return out;
}

void dtk_cfgcache_release(dtk_cfgcache *c, const dtk_config *cfg)
{
	if (!cfg)
		return;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].cfg == cfg) {
			if (c->e[i].refs)
				c->e[i].refs--;
			if (!c->e[i].key && c->e[i].refs == 0)
				remove_at(c, i);
			break;
		}
	pthread_mutex_unlock(&c->mu);
}

void dtk_cfgcache_free(dtk_cfgcache **cp)
{
	if (!cp || !*cp)
		return;
	dtk_cfgcache *c = *cp;
	while (c->n)
		remove_at(c, c->n - 1);
	free(c->e);
	pthread_mutex_destroy(&c->mu);
	free(c);
	*cp = NULL;
}
