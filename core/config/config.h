/* The metric config (config.md): one YAML file, loaded, env-expanded,
 * validated and compiled into the components a check needs.
 *
 * A loaded dtk_config is immutable and may be shared by threads running
 * checks at the same time. */
#ifndef DTK_CONFIG_CONFIG_H
#define DTK_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "alert/alerter.h"
#include "collect/collector.h"
#include "detect/detector.h"
#include "util/tz.h"
#include "util/value.h"

typedef enum dtk_env_mode {
	/* an unset variable without default is an error (dtk run, workers) */
	DTK_ENV_STRICT,
	/* unset variables stay as placeholders; only name, tags and schedule
	 * must resolve; components are not built (publishing, listing) */
	DTK_ENV_DEFERRED,
} dtk_env_mode;

typedef enum dtk_require { DTK_REQUIRE_ANY, DTK_REQUIRE_ALL, DTK_REQUIRE_N } dtk_require;
typedef enum dtk_dir_filter { DTK_DIR_BOTH, DTK_DIR_UP, DTK_DIR_DOWN } dtk_dir_filter;

typedef struct dtk_conditions {
	dtk_require require;
	int require_n;
	int consecutive_anomalies; /* >= 1 */
	dtk_dir_filter direction;
	int has_min_deviation;
	double min_deviation_percent;
	double cooldown_minutes;
	int notify_recovery;
	int notify_on_error;
	int consecutive_errors; /* >= 1 */
} dtk_conditions;

typedef struct dtk_detector_cfg {
	char id[72];
	const dtk_detector_type *impl;
	const dtk_value *params; /* borrowed from the config tree */
	void *compiled;
	int64_t window_seconds, window_points;
} dtk_detector_cfg;

typedef struct dtk_alerter_cfg {
	char id[72]; /* `id`, else the 0-based position */
	const dtk_alerter_type *impl;
	dtk_value *params; /* owned: profile merged with explicit params */
	void *compiled;
	int enabled;
	dtk_conditions cond;
	struct dtk_template *tmpl; /* message_template, or NULL */
} dtk_alerter_cfg;

typedef struct dtk_config {
	char *path;	/* as given */
	char *base_dir; /* directory of the file */
	char *name;
	char *description;
	char **tags;
	size_t ntags;
	const dtk_value *metadata; /* map, borrowed from root */
	char *timezone;
	dtk_tz *tz;
	dtk_value *root; /* owned: the env-expanded document */

	struct {
		const dtk_collector_type *impl;
		dtk_value *params; /* owned, merged */
		void *compiled;
		char **context_columns;
		size_t n_context_columns;
	} collector;

	dtk_detector_cfg *detectors;
	size_t ndetectors;
	dtk_alerter_cfg *alerters;
	size_t nalerters;

	struct {
		int enabled;
		char *type;	   /* NULL: next to the source, else the local db */
		dtk_value *params; /* owned, merged with the profile */
		int64_t datapoint_retention_days; /* 0 = keep everything */
		int64_t detection_retention_days;
		int save_detections;
	} storage;

	struct {
		int64_t interval; /* seconds */
		char *interval_text;
		int64_t timeout;
		int64_t delay;
		int64_t batch_load_days;
		int has_start, has_end;
		int64_t start_time, end_time;
	} schedule;

	dtk_value *warnings; /* list of strings: unknown keys, notes */
	dtk_value *secrets;  /* list of strings produced by ${VAR} expansion */
	int built;	     /* components compiled (strict mode) */
} dtk_config;

typedef struct dtk_config_options {
	dtk_env_mode env_mode;
	const char *profiles_path; /* --profiles; NULL = the lookup order */
	/* variables a worker may expand (NULL = all); others count as unset */
	const char *const *allow_env;
	size_t n_allow_env;
} dtk_config_options;

/* Loads and (in strict mode) builds the config at path. Returns 0 and a
 * config owned by the caller in *out, or -1 with errstr
 * "PATH:LINE:COL: key.path: message". */
int dtk_config_load(const char *path, const dtk_config_options *opt, dtk_config **out,
		    char *errstr, size_t errstr_size);

/* As dtk_config_load from text already in memory; path names it in
 * messages and gives the base directory. */
int dtk_config_parse(const char *text, size_t len, const char *path,
		     const dtk_config_options *opt, dtk_config **out, char *errstr,
		     size_t errstr_size);

void dtk_config_free(dtk_config **cfg);

/* 1 when the config carries tag. */
int dtk_config_has_tag(const dtk_config *cfg, const char *tag);

/* Aligns T down to the config's interval grid (config.md "Time"). */
int64_t dtk_config_align(const dtk_config *cfg, int64_t t);

/* Copies s into out with every secret of cfg (and URL user-info) replaced
 * by ***. cfg may be NULL. */
void dtk_config_mask(const dtk_config *cfg, const char *s, char *out, size_t outsz);

#endif
