#include "select.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct path_list {
	char **items;
	size_t n, cap;
} path_list;

static int push(path_list *l, const char *s)
{
	if (l->n + 1 >= l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **items = realloc(l->items, cap * sizeof(char *));
		if (!items)
			return -1;
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n] = strdup(s);
	if (!l->items[l->n])
		return -1;
	l->items[++l->n] = NULL;
	return 0;
}

static int has_yaml_ext(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int scan(const char *dir, path_list *l, int depth, char *errstr, size_t errstr_size)
{
	if (depth > 32)
		return 0;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(errstr, errstr_size, "%s: cannot open directory: %s", dir, strerror(errno));
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = scan(path, l, depth + 1, errstr, errstr_size);
		else if (S_ISREG(st.st_mode) && has_yaml_ext(e->d_name))
			rc = push(l, path);
	}
	closedir(d);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int dtk_select_scan(const char *dir, char ***paths, size_t *n, char *errstr, size_t errstr_size)
{
	path_list l = {0};
	size_t len = strlen(dir);
	char base[4096];
	snprintf(base, sizeof(base), "%.*s", (int)(len > 1 && dir[len - 1] == '/' ? len - 1 : len),
		 dir);
	if (scan(base, &l, 0, errstr, errstr_size) != 0) {
		dtk_select_free(&l.items, l.n);
		return -1;
	}
	if (!l.items && !(l.items = calloc(1, sizeof(char *)))) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	qsort(l.items, l.n, sizeof(char *), cmp_str);
	*paths = l.items;
	*n = l.n;
	return 0;
}

void dtk_select_free(char ***paths, size_t n)
{
	if (!paths || !*paths)
		return;
	for (size_t i = 0; i < n; i++)
		free((*paths)[i]);
	free(*paths);
	*paths = NULL;
}

static int has(const char *const *tags, size_t n, const char *t)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tags[i], t) == 0)
			return 1;
	return 0;
}

int dtk_select_match(const dtk_tag_filter *f, const char *const *tags, size_t ntags)
{
	for (size_t i = 0; i < f->nexclude; i++)
		if (has(tags, ntags, f->exclude[i]))
			return 0;
	if (!f->ntags)
		return 1;
	size_t hits = 0;
	for (size_t i = 0; i < f->ntags; i++)
		hits += (size_t)has(tags, ntags, f->tags[i]);
	return f->match_all ? hits == f->ntags : hits > 0;
}

int dtk_select_split(const char *value, char ***list, size_t *n)
{
	const char *p = value;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len) {
			char **items = realloc(*list, (*n + 2) * sizeof(char *));
			if (!items)
				return -1;
			*list = items;
			items[*n] = strndup(p, len);
			if (!items[*n])
				return -1;
			items[++*n] = NULL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* A config is due when its interval grid has a slot starting within the
 * minute of now (dtk-dispatch --due, run every minute from cron). */
static int is_due(const dtk_config *cfg, int64_t now)
{
	int64_t minute = now - (now % 60 + 60) % 60;
	return dtk_config_align(cfg, now) >= minute;
}

static int selected_by(const dtk_select_opts *o, const dtk_config *cfg)
{
	if (o->metric && strcmp(o->metric, cfg->name) != 0)
		return 0;
	if (o->due && !is_due(cfg, o->now))
		return 0;
	return dtk_select_match(&o->filter, (const char *const *)cfg->tags, cfg->ntags);
}

static int cmp_by_name(const void *a, const void *b)
{
	const dtk_selected *x = *(const dtk_selected *const *)a, *y = *(const dtk_selected *const *)b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x < y ? -1 : x > y);
}

/* Files sharing one metric name are all config errors; each names the
 * first other file (in scan order) with that name. Sorted, not pairwise:
 * a fleet's config directory holds tens of thousands of files. */
static void mark_duplicates(dtk_selected *items, size_t n)
{
	dtk_selected **by = malloc((n ? n : 1) * sizeof(*by));
	size_t m = 0;
	if (!by)
		return;
	for (size_t i = 0; i < n; i++)
		if (items[i].name)
			by[m++] = &items[i];
	qsort(by, m, sizeof(*by), cmp_by_name);
	for (size_t g = 0, e; g < m; g = e) {
		for (e = g + 1; e < m && strcmp(by[e]->name, by[g]->name) == 0; e++)
			;
		for (size_t i = g; e - g > 1 && i < e; i++) {
			if (by[i]->error)
				continue;
			const dtk_selected *other = by[i == g ? g + 1 : g];
			char err[2048];
			snprintf(err, sizeof(err), "duplicate metric name '%s' (also in %s)",
				 by[i]->name, other->path);
			by[i]->error = strdup(err);
		}
	}
	free(by);
}

/* Loading the configs, the slow part of a selection, shared by threads:
 * each takes the next path and fills its slot. */
typedef struct load_pool {
	char **paths;
	size_t npaths;
	dtk_selected *slots; /* one per path */
	unsigned char *kept; /* slot i holds a selected config or an error */
	const dtk_select_opts *o;
	atomic_size_t next;
} load_pool;

static void load_one(const load_pool *lp, size_t i)
{
	const dtk_select_opts *o = lp->o;
	dtk_config_options deferred = {.env_mode = DTK_ENV_DEFERRED, .profiles_path = o->profiles};
	dtk_config_options strict = {.env_mode = DTK_ENV_STRICT,
				     .profiles_path = o->profiles,
				     .allow_env = o->allow_env,
				     .n_allow_env = o->n_allow_env};
	dtk_selected *it = &lp->slots[i];
	dtk_config *cfg = NULL;
	char err[2048];
	if (dtk_config_load(lp->paths[i], &deferred, &cfg, err, sizeof(err)) != 0) {
		/* a profiles file beside the metrics is not a config */
		if (strstr(err, "a profiles file, not a metric"))
			return;
		it->path = strdup(lp->paths[i]);
		it->error = strdup(err);
		lp->kept[i] = 1;
		return;
	}
	if (!selected_by(o, cfg)) {
		dtk_config_free(&cfg);
		return;
	}
	it->path = strdup(lp->paths[i]);
	it->name = strdup(cfg->name);
	it->deferred = cfg;
	lp->kept[i] = 1;
	if (o->load_strict && dtk_config_load(lp->paths[i], &strict, &it->cfg, err, sizeof(err)) != 0)
		it->error = strdup(err);
}

static void *load_thread(void *arg)
{
	load_pool *lp = arg;
	for (size_t i; (i = atomic_fetch_add(&lp->next, 1)) < lp->npaths;)
		load_one(lp, i);
	return NULL;
}

/* Threads for loading: one per online CPU, at most 8, and none for a
 * selection too small to repay starting them. */
static size_t load_threads(size_t npaths)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = cpus > 1 ? (size_t)cpus : 1;
	if (n > 8)
		n = 8;
	return npaths < 64 ? 1 : n;
}

int dtk_select_configs(const char *dir, const dtk_select_opts *o, dtk_selected **out, size_t *n,
		       char *errstr, size_t errstr_size)
{
	char **paths = NULL;
	size_t npaths = 0, k = 0;
	*out = NULL;
	*n = 0;
	if (dtk_select_scan(dir, &paths, &npaths, errstr, errstr_size) != 0)
		return -1;
	dtk_selected *items = calloc(npaths ? npaths : 1, sizeof(*items));
	if (!items) {
		snprintf(errstr, errstr_size, "out of memory");
		dtk_select_free(&paths, npaths);
		return -1;
	}
	unsigned char *kept = calloc(npaths ? npaths : 1, 1);
	if (!kept) {
		snprintf(errstr, errstr_size, "out of memory");
		free(items);
		dtk_select_free(&paths, npaths);
		return -1;
	}
	load_pool lp = {.paths = paths, .npaths = npaths, .slots = items, .kept = kept, .o = o};
	atomic_init(&lp.next, 0);
	size_t nthreads = load_threads(npaths), started = 0;
	pthread_t threads[8];
	for (size_t i = 1; i < nthreads; i++)
		if (pthread_create(&threads[started], NULL, load_thread, &lp) == 0)
			started++;
	load_thread(&lp);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	/* the kept slots, in path order whatever thread loaded them */
	for (size_t i = 0; i < npaths; i++) {
		if (!kept[i])
			continue;
		if (k != i) {
			items[k] = items[i];
			memset(&items[i], 0, sizeof(items[i]));
		}
		k++;
	}
	free(kept);
	dtk_select_free(&paths, npaths);
	mark_duplicates(items, k);
	for (size_t i = 0; i < k; i++)
		if (items[i].error)
			dtk_config_free(&items[i].cfg);
	*out = items;
	*n = k;
	return 0;
}

void dtk_select_release(dtk_selected **pitems, size_t n)
{
	if (!pitems || !*pitems)
		return;
	dtk_selected *items = *pitems;
	for (size_t i = 0; i < n; i++) {
		free(items[i].path);
		free(items[i].name);
		free(items[i].error);
		dtk_config_free(&items[i].deferred);
		dtk_config_free(&items[i].cfg);
		dtk_check_result_free(&items[i].result);
	}
	free(items);
	*pitems = NULL;
}

typedef struct run_pool {
	dtk_selected *items;
	size_t n, next;
	pthread_mutex_t mu;
	const dtk_check_options *opt;
} run_pool;

static void *run_thread(void *arg)
{
	run_pool *p = arg;
	dtk_session *session = dtk_session_new();
	for (;;) {
		pthread_mutex_lock(&p->mu);
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->n)
			break;
		if (p->items[i].cfg && !p->items[i].error)
			dtk_check_run(p->items[i].cfg, p->opt, session, &p->items[i].result);
	}
	dtk_session_free(&session);
	return NULL;
}

void dtk_select_run(dtk_selected *items, size_t n, size_t parallel,
		    const dtk_check_options *opt)
{
	run_pool p = {.items = items, .n = n, .opt = opt};
	pthread_mutex_init(&p.mu, NULL);
	size_t nthreads = parallel < n ? parallel : n;
	pthread_t *threads = calloc(nthreads ? nthreads : 1, sizeof(pthread_t));
	size_t started = 0;
	for (size_t i = 0; threads && i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, run_thread, &p) == 0)
			started++;
	if (!started)
		run_thread(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_mutex_destroy(&p.mu);
}

void dtk_select_count(const dtk_selected *items, size_t n, dtk_select_counts *c)
{
	memset(c, 0, sizeof(*c));
	c->selected = n;
	for (size_t i = 0; i < n; i++) {
		if (items[i].error) {
			c->invalid++;
			continue;
		}
		if (!items[i].result)
			continue;
		c->results++;
		const char *st = items[i].result->status;
		if (strcmp(st, "error") == 0)
			c->error++;
		else if (strcmp(st, "anomaly") == 0)
			c->anomaly++;
		else
			c->ok++;
	}
}
