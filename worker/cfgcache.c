/* The worker's config cache: see cfgcache.h. A small array scanned under
 * one mutex, comparing a hash of each key before the key itself; configs
 * are freed after the mutex is released, so other threads never wait on a
 * config's destruction. */
#include "cfgcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

typedef struct entry {
	char *key;     /* NULL = detached: evicted while referenced */
	uint64_t hash; /* of key */
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

static entry *find(dtk_cfgcache *c, const char *key, uint64_t hash)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].hash == hash && c->e[i].key && strcmp(c->e[i].key, key) == 0)
			return &c->e[i];
	return NULL;
}

const dtk_config *dtk_cfgcache_get(dtk_cfgcache *c, const char *key)
{
	const dtk_config *cfg = NULL;
	uint64_t hash = dtk_hash_str(key);
	pthread_mutex_lock(&c->mu);
	entry *e = find(c, key, hash);
	if (e) {
		e->refs++;
		e->used = ++c->clock;
		cfg = e->cfg;
	}
	pthread_mutex_unlock(&c->mu);
	return cfg;
}

/* Drops entry i; returns its config for the caller to free once the
 * mutex is released. */
static dtk_config *remove_at(dtk_cfgcache *c, size_t i)
{
	dtk_config *cfg = c->e[i].cfg;
	free(c->e[i].key);
	c->e[i] = c->e[--c->n];
	return cfg;
}

const dtk_config *dtk_cfgcache_put(dtk_cfgcache *c, const char *key, dtk_config **cfg)
{
	const dtk_config *out = NULL;
	dtk_config *unused = NULL; /* freed after the mutex */
	uint64_t hash = dtk_hash_str(key);
	pthread_mutex_lock(&c->mu);
	entry *hit = find(c, key, hash);
	if (hit) {
		hit->refs++;
		hit->used = ++c->clock;
		out = hit->cfg;
		unused = *cfg;
		*cfg = NULL;
		goto out;
	}
	size_t cached = 0, oldest = SIZE_MAX;
	for (size_t i = 0; i < c->n; i++) {
		if (!c->e[i].key)
			continue;
		cached++;
		if (oldest == SIZE_MAX || c->e[i].used < c->e[oldest].used)
			oldest = i;
	}
	if (cached >= c->cap && oldest != SIZE_MAX) {
		/* evict the least recently used: free it now, or when its last
		 * user releases it */
		free(c->e[oldest].key);
		c->e[oldest].key = NULL;
		c->e[oldest].hash = 0;
		if (c->e[oldest].refs == 0)
			unused = remove_at(c, oldest);
	}
	if (c->n == c->size) {
		size_t size = c->size ? c->size * 2 : 16;
		entry *e = realloc(c->e, size * sizeof(*e));
		if (!e)
			goto fail;
		c->e = e;
		c->size = size;
	}
	char *k = strdup(key);
	if (!k)
		goto fail;
	c->e[c->n] = (entry){.key = k, .hash = hash, .cfg = *cfg, .refs = 1, .used = ++c->clock};
	c->n++;
	out = *cfg;
	*cfg = NULL;
	goto out;
fail:
	pthread_mutex_unlock(&c->mu);
	dtk_config_free(&unused);
	dtk_config_free(cfg);
	return NULL;
out:
	pthread_mutex_unlock(&c->mu);
	dtk_config_free(&unused);
	return out;
}

void dtk_cfgcache_release(dtk_cfgcache *c, const dtk_config *cfg)
{
	if (!cfg)
		return;
	dtk_config *unused = NULL;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].cfg == cfg) {
			if (c->e[i].refs)
				c->e[i].refs--;
			if (!c->e[i].key && c->e[i].refs == 0)
				unused = remove_at(c, i);
			break;
		}
	pthread_mutex_unlock(&c->mu);
	dtk_config_free(&unused);
}

void dtk_cfgcache_free(dtk_cfgcache **cp)
{
	if (!cp || !*cp)
		return;
	dtk_cfgcache *c = *cp;
	while (c->n) {
		dtk_config *cfg = remove_at(c, c->n - 1);
		dtk_config_free(&cfg);
	}
	free(c->e);
	pthread_mutex_destroy(&c->mu);
	free(c);
	*cp = NULL;
}
