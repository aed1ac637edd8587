/* Config discovery and tag selection, shared by `dtk run-tagged`,
 * `dtk list-metrics` and `dtk-dispatch` so they select identically. */
#ifndef DTK_SELECT_H
#define DTK_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "config/config.h"

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

/* What to select under a directory: by tags, by exact metric name, or the
 * configs due now. */
typedef struct dtk_select_opts {
	dtk_tag_filter filter; /* empty (no tags, no exclusions) selects all */
	const char *metric;    /* only the config with this name */
	int due;	       /* only configs with a slot starting at now's minute */
	int64_t now;	       /* for due */
	const char *profiles;
	int load_strict;	 /* load the selected configs in strict mode (to run them) */
	const char *const *allow_env; /* strict loading: expandable prefixes (NULL = all) */
	size_t n_allow_env;
} dtk_select_opts;

/* One config of a selection: loaded (cfg, in strict mode when asked),
 * or a config error. */
typedef struct dtk_selected {
	char *path;
	char *name;		 /* when it loaded */
	dtk_config *deferred;	 /* the deferred-mode load (name, tags, schedule) */
	dtk_config *cfg;	 /* the strict load, with load_strict */
	char *error;		 /* why it is invalid, or NULL */
	dtk_check_result *result; /* filled by dtk_select_run */
} dtk_selected;

/* Scans dir (recursively, .yaml and .yml files), loads each in deferred env
 * mode (so unset secrets never hide a tag; on one thread per CPU, at most
 * 8, for 64 files or more), keeps those the options select
 * and files that fail to load (as errors), then marks files sharing one
 * metric name as errors. Profiles files are skipped. Returns 0 and an
 * array owned by the caller (dtk_select_release), or -1 with errstr when
 * dir cannot be read. */
int dtk_select_configs(const char *dir, const dtk_select_opts *o, dtk_selected **out, size_t *n,
		       char *errstr, size_t errstr_size);
void dtk_select_release(dtk_selected **items, size_t n);

/* Runs every selected config that loaded strictly, on up to `parallel`
 * threads, one dtk_session per thread, filling items[i].result. */
void dtk_select_run(dtk_selected *items, size_t n, size_t parallel,
		    const dtk_check_options *opt);

/* Counts of a run, for summaries. */
typedef struct dtk_select_counts {
	size_t selected, results, ok, anomaly, error, invalid;
} dtk_select_counts;

void dtk_select_count(const dtk_selected *items, size_t n, dtk_select_counts *c);

#endif
