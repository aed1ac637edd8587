#include "select.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
