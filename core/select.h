/* Config discovery and tag selection, shared by `dtk run-tagged`,
 * `dtk list-metrics` and `dtk-dispatch` so they select identically. */
#ifndef DTK_SELECT_H
#define DTK_SELECT_H

#include <stddef.h>

typedef struct dtk_tag_filter {
	const char *const *tags; /* any of these (or all, with match_all) */
	size_t ntags;
	const char *const *exclude; /* none of these */
	size_t nexclude;
	int match_all;
} dtk_tag_filter;

/* Lists *.yaml and *.yml under dir, recursively, sorted by path. Returns 0
 * and a NULL-terminated array of malloc'd paths owned by the caller (free
 * with dtk_select_free), or -1 with errstr. */
int dtk_select_scan(const char *dir, char ***paths, size_t *n, char *errstr, size_t errstr_size);

void dtk_select_free(char ***paths, size_t n);

/* Exclusions first; then any tag (or all with match_all); exclude-only
 * selects everything else. */
int dtk_select_match(const dtk_tag_filter *f, const char *const *tags, size_t ntags);

/* Splits repeatable, comma-separated option values into a list: appends
 * the non-empty items of value to *list (malloc'd strings). Returns 0 or
 * -1 when out of memory. */
int dtk_select_split(const char *value, char ***list, size_t *n);

#endif
